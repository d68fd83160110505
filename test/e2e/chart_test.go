//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/connectors-io/connectors/internal/realnode"
	"github.com/connectors-io/connectors/internal/testbed"
)

// chartValues are what the real node needs: no registry, so the driver
// registers itself (the registrar image cannot be pulled) and the bundled
// Redis runs the node's local Redis image.
var chartValues = []string{"csi.registration=builtin", "redis.bundled.image=" + realnode.RedisImage}

func TestHelmInstallsConnectorsOnARealNodeWhereTheQuickStartWorksUpgradesAndUninstalls(t *testing.T) {
	rn := testbed.StartRealNode(t)
	conn := rn.InstallChart(t, testbed.ChartOptions{Set: chartValues})
	k := func(stdin string, args ...string) string { t.Helper(); return rn.MustRun(t, stdin, args...) }
	sys := testbed.ChartNamespace
	registerSecret(t, rn, sys, "connectors-gateway-ca")
	registerSecret(t, rn, sys, "connectors-shared-key")

	t.Run("the gateway, controller, csi and Redis pods are Ready", func(t *testing.T) {
		for component, want := range map[string]int{"gateway": 2, "controller": 2, "csi": 1, "redis": 1} {
			out := k("", "get", "pods", "-n", sys, "-l", "app.kubernetes.io/component="+component,
				"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
			ready := strings.Count(out, " True")
			if ready != want {
				t.Errorf("%s: %d pods Ready, want %d:\n%s", component, ready, want, out)
			}
		}
	})

	// Every component runs as a pod: the audit is in the gateway pods' logs.
	ns, _ := walkQuickStart(t, rn, conn, func(t *testing.T) string { return rn.ComponentLogs(t, "gateway") }, "")

	t.Run("the components log no secret: neither the gateway CA key nor the shared key", func(t *testing.T) {
		logs := captureReleaseLogs(t, rn)
		for _, secret := range []string{"connectors-gateway-ca", "connectors-shared-key"} {
			for key, v := range secretData(t, rn, sys, secret) {
				if key != "tls.crt" && len(v) > 0 && strings.Contains(logs, string(v)) {
					t.Errorf("the logs hold %s's %s", secret, key)
				}
			}
		}
	})

	caBefore := secretData(t, rn, sys, "connectors-gateway-ca")
	t.Run("helm upgrade rolls the gateway while a running client sees no failed request", func(t *testing.T) {
		// kubectl through the mounted kubeconfig, five times a second: each
		// call is a new tunnel through connectors-proxy-service.
		k(podWithTheKubeconfig("client", "while true; do if kubectl get --raw /version >/dev/null 2>&1; then echo ok; else echo fail; fi; sleep 0.2; done", ""),
			"apply", "-n", ns, "-f", "-")
		k("", "wait", "--for=condition=Ready", "pod/client", "-n", ns, "--timeout=120s")
		before := strings.Fields(k("", "get", "pods", "-n", sys, "-l", "app.kubernetes.io/component=gateway", "-o", "jsonpath={.items[*].metadata.name}"))
		time.Sleep(3 * time.Second)
		if _, err := rn.Helm(t.Context(), "upgrade", "connectors", testbed.RepoRoot()+"/chart", "-n", sys, "--reuse-values",
			"--set", "gateway.podAnnotations.rolled=once", "--wait", "--timeout", "5m"); err != nil {
			t.Fatal(err)
		}
		k("", "rollout", "status", "deployment/connectors-gateway", "-n", sys, "--timeout=180s")
		// The old replicas drain (shutdown delay and timeout) after the new
		// ones are Ready; keep calling until they are gone.
		rn.WaitFor(t, "the old gateway pods to be gone", func() error {
			for _, p := range before {
				if _, err := rn.Clientset.CoreV1().Pods(sys).Get(t.Context(), p, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					return fmt.Errorf("%s is still there", p)
				}
			}
			return nil
		})
		time.Sleep(3 * time.Second)
		after := strings.Fields(k("", "get", "pods", "-n", sys, "-l", "app.kubernetes.io/component=gateway", "-o", "jsonpath={.items[*].metadata.name}"))
		for _, p := range after {
			for _, b := range before {
				if p == b {
					t.Errorf("the gateway pod %s was not replaced", p)
				}
			}
		}
		oks, fails := 0, 0
		s := bufio.NewScanner(strings.NewReader(k("", "logs", "client", "-n", ns)))
		for s.Scan() {
			switch s.Text() {
			case "ok":
				oks++
			case "fail":
				fails++
			}
		}
		t.Logf("the client's calls during the upgrade: %d ok, %d failed", oks, fails)
		if fails > 0 || oks < 20 {
			t.Errorf("%d of the client's %d calls failed (want none, and at least 20 calls)", fails, oks+fails)
		}
		if !equalData(caBefore, secretData(t, rn, sys, "connectors-gateway-ca")) {
			t.Error("the upgrade changed the gateway CA: issued kubeconfigs no longer trust the gateway")
		}
	})

	// The pods of the upgrade, before the uninstall removes them.
	captureReleaseLogs(t, rn)
	t.Run("helm uninstall removes the release but keeps the gateway CA", func(t *testing.T) {
		if _, err := rn.Helm(t.Context(), "uninstall", "connectors", "-n", sys, "--wait", "--timeout", "3m"); err != nil {
			t.Fatal(err)
		}
		if !equalData(caBefore, secretData(t, rn, sys, "connectors-gateway-ca")) {
			t.Error("the gateway CA Secret did not survive the uninstall unchanged")
		}
		for _, kind := range []string{"deployment/connectors-gateway", "deployment/connectors-controller", "daemonset/connectors-csi", "secret/connectors-shared-key"} {
			if out, err := rn.Run(t.Context(), "", "get", kind, "-n", sys, "--ignore-not-found", "-o", "name"); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("%s is still there after the uninstall (%v)", kind, err)
			}
		}
	})
}

func secretData(t *testing.T, rn *testbed.RealNode, ns, name string) map[string][]byte {
	t.Helper()
	s, err := rn.Clientset.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Data
}

func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// captureReleaseLogs returns the logs of the release's gateway, controller
// and CSI pods as they are now, and tees them into captured.
func captureReleaseLogs(t *testing.T, rn *testbed.RealNode) string {
	t.Helper()
	logs := ""
	for _, c := range []string{"gateway", "controller", "csi"} {
		logs += rn.ComponentLogs(t, c)
	}
	_, _ = captured.Child().Write([]byte(logs))
	return logs
}
