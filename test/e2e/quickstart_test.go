//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/connectors-io/connectors/internal/testbed"
)

// binary returns the connectors binary to test.
func binary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("CONNECTORS_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "connectors")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", out, "./cmd/connectors")
	cmd.Dir = testbed.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the connectors binary: %v\n%s", err, b)
	}
	return out
}

// answersOK reports whether GET url answers 200 now.
func answersOK(t *testing.T, url string) bool {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// devEnv is a running `connectors dev`.
type devEnv struct {
	bin, state, kubectl string
	stopOnce            sync.Once
	stopFn              func()
}

// stop interrupts `connectors dev` (as Ctrl-C does) and checks that it
// ends in time and cleans its state dir; the test's cleanup does it too.
func (d *devEnv) stop() { d.stopOnce.Do(d.stopFn) }

// startDev runs `connectors dev` with extra flags (e.g. --kubeconfig).
func startDev(t *testing.T, flags ...string) *devEnv {
	t.Helper()
	bins := testbed.BinDir(t)
	d := &devEnv{bin: binary(t), state: t.TempDir(), kubectl: filepath.Join(bins, "kubectl")}
	cmd := exec.CommandContext(context.WithoutCancel(t.Context()), d.bin, append([]string{"dev", "--state-dir", d.state, "--bins", bins}, flags...)...)
	// Its stdout and stderr (the logs of every component it runs).
	logs := captured.Child()
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			_, _ = logs.Write([]byte(s.Text() + "\n"))
			if strings.HasPrefix(s.Text(), "connectors dev: ready") {
				close(ready)
			}
		}
	}()
	go func() { exited <- cmd.Wait() }()
	d.stopFn = func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("connectors dev exited with %v after SIGINT", err)
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("connectors dev did not stop within 60s of SIGINT")
		}
		for _, f := range []string{"admin.kubeconfig", "gateway.addr", "csi.sock", "ca.crt"} {
			if _, err := os.Stat(filepath.Join(d.state, f)); err == nil {
				t.Errorf("%s is left in the state dir after shutdown", f)
			}
		}
	}
	t.Cleanup(d.stop)
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("connectors dev exited before ready: %v\n%s", err, logs.Text())
	case <-time.After(2 * time.Minute):
		t.Fatalf("connectors dev not ready within 2 minutes\n%s", logs.Text())
	}
	admin, err := os.ReadFile(filepath.Join(d.state, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	captured.Rendered(map[string]string{"admin.kubeconfig": string(admin)})
	return d
}

// kc runs kubectl as the cluster admin.
func (d *devEnv) kc(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, nil, stdin, d.kubectl, append([]string{"--kubeconfig", filepath.Join(d.state, "admin.kubeconfig")}, args...)...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// exec runs `connectors dev exec` with the test bed's kubectl on PATH.
func (d *devEnv) exec(t *testing.T, ns, connector string, cmd ...string) (string, string, error) {
	t.Helper()
	env := []string{"PATH=" + filepath.Dir(d.kubectl) + ":" + os.Getenv("PATH")}
	args := append([]string{"dev", "exec", "--state-dir", d.state, "-n", ns, "--connector", connector, "--"}, cmd...)
	return run(t, env, "", d.bin, args...)
}

func run(t *testing.T, env []string, stdin, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// quickStart runs steps 1 and 2 of the quick start in namespace ns, with a
// ServiceAccount of the cluster itself that may list pods as the target's
// credential, and waits for the connector to be Ready. It returns that
// token and the target's address.
func quickStart(t *testing.T, d *devEnv, ns string) (token, address string) {
	t.Helper()
	d.kc(t, "", "create", "ns", ns)
	d.kc(t, "", "create", "serviceaccount", "demo-reader", "-n", ns)
	d.kc(t, "", "create", "clusterrole", "demo-pod-reader", "--verb=get,list,watch", "--resource=pods,namespaces")
	d.kc(t, "", "create", "clusterrolebinding", "demo-pod-reader", "--clusterrole=demo-pod-reader", "--serviceaccount="+ns+":demo-reader")
	token = strings.TrimSpace(d.kc(t, "", "create", "token", "demo-reader", "-n", ns, "--duration=1h"))
	captured.Secret(token)
	address = d.kc(t, "", "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	manifest := testbed.QuickstartManifests(token, address)
	d.kc(t, manifest, "apply", "-n", ns, "-f", "-")
	d.kc(t, "", "wait", "--for=condition=Ready", "connector/k8s-connector", "-n", ns, "--timeout=120s")
	return token, address
}

// gateway is the address of the running gateway.
func (d *devEnv) gateway(t *testing.T) string {
	t.Helper()
	addr, err := os.ReadFile(filepath.Join(d.state, "gateway.addr"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(addr))
}

func TestQuickStart(t *testing.T) {
	d := startDev(t)
	const ns = "k8s-connector-demo"
	token, address := quickStart(t, d, ns)
	gw := d.gateway(t)

	t.Run("kubectl get connector prints the row of the quick start", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(d.kc(t, "", "get", "connector", "k8s-connector", "-n", ns)), "\n")
		if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME CLASS ADDRESS READY REASON AGE" {
			t.Fatalf("output %q", lines)
		}
		if row := strings.Fields(lines[1]); len(row) < 4 || row[0] != "k8s-connector" || row[1] != "k8s" || row[2] != address || row[3] != "True" {
			t.Errorf("row %q, want k8s-connector k8s %s True", lines[1], address)
		}
	})
	t.Run("status.proxy.httpAddress.url is the gateway", func(t *testing.T) {
		if got := d.kc(t, "", "get", "connector", "k8s-connector", "-n", ns, "-o", "jsonpath={.status.proxy.httpAddress.url}"); got != "http://"+gw {
			t.Errorf("url %q, want http://%s", got, gw)
		}
	})
	t.Run("the Service c-k8s-connector is an alias of the gateway owned by the connector", func(t *testing.T) {
		var svc struct {
			Metadata struct {
				OwnerReferences []struct{ Kind, Name string } `json:"ownerReferences"`
			} `json:"metadata"`
			Spec struct {
				Type         string `json:"type"`
				ExternalName string `json:"externalName"`
			} `json:"spec"`
		}
		if err := json.Unmarshal([]byte(d.kc(t, "", "get", "service", "c-k8s-connector", "-n", ns, "-o", "json")), &svc); err != nil {
			t.Fatal(err)
		}
		if svc.Spec.Type != "ExternalName" || svc.Spec.ExternalName != "connectors-proxy-service.connectors-system.svc.cluster.local" ||
			len(svc.Metadata.OwnerReferences) != 1 || svc.Metadata.OwnerReferences[0].Name != "k8s-connector" {
			t.Errorf("service %+v", svc)
		}
	})
	t.Run("the mounted kubeconfig has the documented shape and no Secret token", func(t *testing.T) {
		out, errOut, err := d.exec(t, ns, "k8s-connector", "sh", "-c", `cat "$KUBECONFIG"`)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		captured.Rendered(map[string]string{"kubeconfig": out})
		cfg, err := clientcmd.Load([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		cluster := cfg.Clusters["k8s"]
		if cfg.CurrentContext != "k8s" || cluster == nil || cluster.Server != address || cfg.AuthInfos["k8s"] == nil || cfg.AuthInfos["k8s"].Token != "fake-token" {
			t.Fatalf("kubeconfig %+v", cfg)
		}
		if !strings.HasPrefix(cluster.ProxyURL, "http://"+ns+"%2Fk8s-connector:ey") || !strings.HasSuffix(cluster.ProxyURL, "@"+gw) {
			t.Errorf("proxy-url does not have the documented shape (user %s%%2Fk8s-connector, a pod token, host %s)", ns, gw)
		}
		ca, err := os.ReadFile(filepath.Join(d.state, "ca.crt"))
		if err != nil || !bytes.Equal(cluster.CertificateAuthorityData, ca) {
			t.Error("certificate-authority-data is not the gateway CA")
		}
		all, _, err := d.exec(t, ns, "k8s-connector", "sh", "-c", `cat "$CONNECTORS_DIR"/* "$CONNECTORS_DIR"/.env`)
		captured.Rendered(map[string]string{"mounted files": all})
		if err != nil || strings.Contains(out, token) || strings.Contains(all, token) {
			t.Errorf("a mounted file holds the Secret's token (or they could not be read: %v)", err)
		}
	})
	t.Run("kubectl get pods --all-namespaces lists the pods through the gateway", func(t *testing.T) {
		out, errOut, err := d.exec(t, ns, "k8s-connector", "kubectl", "get", "pods", "-v=5", "--all-namespaces")
		if err != nil || !strings.HasPrefix(out, "NAMESPACE") || !strings.Contains(out, ns+"   dev-exec-") {
			t.Errorf("kubectl: %v\n%s\n%s", err, out, errOut)
		}
	})
	t.Run("auth whoami through the connector shows the connector's identity", func(t *testing.T) {
		out, errOut, err := d.exec(t, ns, "k8s-connector", "kubectl", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		if err != nil || out != "system:serviceaccount:"+ns+":demo-reader" {
			t.Errorf("whoami %q (%v): %s", out, err, errOut)
		}
	})
	t.Run("an unknown connector is explained and fails the command", func(t *testing.T) {
		_, errOut, err := d.exec(t, ns, "nope", "true")
		if err == nil || !strings.Contains(errOut, "nope") || !strings.Contains(errOut, "not found") {
			t.Errorf("err %v, stderr %q: want a failure naming the missing connector", err, errOut)
		}
	})
	t.Run("the workload's exit status is relayed", func(t *testing.T) {
		_, _, err := d.exec(t, ns, "k8s-connector", "sh", "-c", "exit 7")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 7 {
			t.Errorf("err %v, want exit status 7", err)
		}
	})
	t.Run("kubectl describe explains a connector whose token the target refuses", func(t *testing.T) {
		captured.Secret("not-a-valid-token")
		broken := strings.NewReplacer("k8s-secret", "broken-secret", "k8s-connector", "broken").Replace(testbed.QuickstartManifests("not-a-valid-token", address))
		d.kc(t, broken, "apply", "-n", ns, "-f", "-")
		d.kc(t, "", "wait", "--for=condition=AuthReady=False", "connector/broken", "-n", ns, "--timeout=120s")
		out := d.kc(t, "", "describe", "connector", "broken", "-n", ns)
		for _, want := range []string{"AuthenticationFailed", "answered 401 Unauthorized", "broken-secret"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl describe connector does not say %q:\n%s", want, out)
			}
		}
		if row := strings.Fields(d.kc(t, "", "get", "connector", "broken", "-n", ns, "--no-headers")); len(row) < 5 || row[3] != "False" || row[4] != "AuthenticationFailed" {
			t.Errorf("row %v, want READY False REASON AuthenticationFailed", row)
		}
	})
}

// TestDevIntoAnExistingClusterKeepsItsGatewayCA: `connectors dev
// --kubeconfig` installs into a cluster that it did not start (the CRDs
// included), serves the quick start there, and a second run reuses the
// gateway CA of the first, so kubeconfigs rendered before keep working.
func TestDevIntoAnExistingClusterKeepsItsGatewayCA(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	const ns = "existing-cluster-demo"
	gatewayCA := func() []byte {
		s, err := cp.Clientset.CoreV1().Secrets("connectors-system").Get(t.Context(), "connectors-gateway-ca", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		captured.Secret(string(s.Data["tls.key"]))
		return s.Data["tls.crt"]
	}
	listPods := func(d *devEnv) {
		t.Helper()
		out, errOut, err := d.exec(t, ns, "k8s-connector", "kubectl", "get", "pods", "-n", ns)
		if err != nil || !strings.Contains(out, "dev-exec-") {
			t.Fatalf("kubectl through the gateway: %v\n%s\n%s", err, out, errOut)
		}
	}

	first := startDev(t, "--kubeconfig", cp.KubeconfigPath)
	quickStart(t, first, ns)
	listPods(first)
	ca := gatewayCA()
	first.stop()

	second := startDev(t, "--kubeconfig", cp.KubeconfigPath)
	if !bytes.Equal(gatewayCA(), ca) {
		t.Error("the second run replaced the gateway CA of the first")
	}
	// The controller of the second run publishes its own gateway address.
	gw := "http://" + second.gateway(t)
	deadline := time.Now().Add(time.Minute)
	for second.kc(t, "", "get", "connector", "k8s-connector", "-n", ns, "-o", "jsonpath={.status.proxy.httpAddress.url}") != gw {
		if time.Now().After(deadline) {
			t.Fatal("the connector never published the second run's gateway")
		}
		time.Sleep(200 * time.Millisecond)
	}
	listPods(second)
}
