//go:build integration

package gateway_test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestKubectlThroughTheGateway drives the real kubectl with a kubeconfig
// shaped exactly like the quick start's at the test control plane.
func TestKubectlThroughTheGateway(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "k8s-connector-demo")
	c := readyConnector(t, ns, "k8s-connector", apiserver(), cp.TargetToken(t, "reader"), "http://"+e.addr)
	token, _ := cp.PodToken(t, ns, "k8s-access", "default")
	kc := e.kubeconfig(t, c, token)

	run := func(t *testing.T, stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := kubectl(t, kc, nil, stdin, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}

	t.Run("get pods --all-namespaces lists the target's pods", func(t *testing.T) {
		out := run(t, "", "get", "pods", "-v=5", "--all-namespaces")
		if !strings.Contains(out, "k8s-access") || !strings.HasPrefix(out, "NAMESPACE") {
			t.Errorf("kubectl printed %q, want the pod list with k8s-access", out)
		}
	})
	t.Run("get ns -o json decodes", func(t *testing.T) {
		var list struct {
			Items []struct{ Metadata struct{ Name string } } `json:"items"`
		}
		if err := json.Unmarshal([]byte(run(t, "", "get", "ns", "-o", "json")), &list); err != nil || len(list.Items) == 0 {
			t.Fatalf("not a namespace list: %v", err)
		}
	})
	t.Run("auth whoami shows the connector's identity, proof of injection", func(t *testing.T) {
		out := run(t, "", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		if !strings.HasPrefix(out, "system:serviceaccount:target-") || !strings.HasSuffix(out, ":reader") {
			t.Errorf("whoami = %q, want the connector Secret's ServiceAccount", out)
		}
	})
	t.Run("apply and delete a ConfigMap", func(t *testing.T) {
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: via-gateway\n  namespace: " + ns + "\ndata:\n  a: b\n"
		if out := run(t, cm, "apply", "-f", "-"); !strings.Contains(out, "configmap/via-gateway created") {
			t.Errorf("apply printed %q", out)
		}
		var got corev1.ConfigMap
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "via-gateway"}, &got); err != nil || got.Data["a"] != "b" {
			t.Fatalf("the ConfigMap did not arrive: %v", err)
		}
		if out := run(t, "", "delete", "configmap", "via-gateway", "-n", ns); !strings.Contains(out, "deleted") {
			t.Errorf("delete printed %q", out)
		}
	})
	t.Run("--raw /version answers the target's version", func(t *testing.T) {
		if out := run(t, "", "get", "--raw", "/version"); !strings.Contains(out, `"gitVersion": "v1.37.2"`) {
			t.Errorf("version = %q", out)
		}
	})
	t.Run("a watch receives an event through the tunnel", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), filepath.Join(cp.BinDir, "kubectl"), "get", "configmaps", "-n", ns, "-w", "--output-watch-events", "-o", "name")
		cmd.Env = []string{"KUBECONFIG=" + kc, "HOME=" + t.TempDir()}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		lines := make(chan string, 16)
		go func() {
			s := bufio.NewScanner(stdout)
			for s.Scan() {
				lines <- s.Text()
			}
			close(lines)
		}()
		time.Sleep(time.Second) // the watch is established
		if err := cp.Client.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "watched"}}); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("the watch ended without the event")
				}
				if strings.Contains(l, "configmap/watched") {
					return
				}
			case <-timeout:
				t.Fatal("no watch event for configmap/watched")
			}
		}
	})
	t.Run("no token reaches the logs", func(t *testing.T) {
		logs := e.logs.Text()
		if strings.Contains(logs, string(token)) {
			t.Error("the pod token appears in the gateway's logs")
		}
		if !strings.Contains(logs, `"podName"="k8s-access"`) {
			t.Errorf("no audit line names the pod; logs:\n%.2000s", logs)
		}
		if !strings.Contains(logs, `"connector"="`+c.Namespace+"/"+c.Name+`"`) {
			t.Errorf("no audit line names the connector used; logs:\n%.2000s", logs)
		}
	})
}
