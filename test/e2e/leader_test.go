//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/internal/localcluster"
	"github.com/connectors-io/connectors/internal/testbed"
)

// probedTarget is an HTTPS server that answers the k8s class's probes
// (/livez and /api) and counts them: two per reconcile.
type probedTarget struct {
	*httptest.Server
	probes atomic.Int64
}

func newProbedTarget(t *testing.T) *probedTarget {
	t.Helper()
	pt := &probedTarget{}
	pt.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pt.probes.Add(1)
		_, _ = w.Write([]byte(`{"kind":"APIVersions","versions":["v1"]}`))
	}))
	pt.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	pt.Config.ErrorLog = log.New(io.Discard, "", 0)
	pt.StartTLS()
	t.Cleanup(pt.Close)
	return pt
}

// controllerProcess is a running `connectors controller`.
type controllerProcess struct {
	control string // base URL of its control API
	cmd     *exec.Cmd
	logs    *testbed.LogCapture // a child of captured
	exited  chan error
}

func startController(t *testing.T, cp *testbed.ControlPlane, install string) *controllerProcess {
	t.Helper()
	ports := make([]int, 2)
	for i := range ports {
		p, err := localcluster.FreePort(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	p := &controllerProcess{control: "http://127.0.0.1:" + strconv.Itoa(ports[0]), logs: captured.Child(), exited: make(chan error, 1)}
	p.cmd = exec.CommandContext(context.WithoutCancel(t.Context()), binary(t), "controller", "--kubeconfig", cp.KubeconfigPath, "--namespace", install,
		"--leader-elect", "--listen-control", "127.0.0.1:"+strconv.Itoa(ports[0]),
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(ports[1]), "--metrics-bind-address", "0")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("controller on %s logged:\n%s", p.control, p.logs.Text())
		}
	})
	waitFor(t, "the controller's control API", func() bool { return answersOK(t, p.control+"/healthz") })
	return p
}

// stop sends SIGTERM and waits for the process (it releases its lease).
func (p *controllerProcess) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("the controller on %s exited with %v after SIGTERM, want 0", p.control, err)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		err := <-p.exited
		t.Logf("killed: %v", err)
		t.Errorf("the controller on %s did not stop within 30s of SIGTERM", p.control)
	}
}

func (p *controllerProcess) trigger(t *testing.T, token, ns, name string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.control+"/v1/reconcile/"+ns+"/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"queued":[{"namespace":"`+ns+`","name":"`+name+`"}]`) {
		t.Fatalf("trigger to %s: %d %s, want 202 with the connector queued", p.control, resp.StatusCode, body)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// steady waits until n stops changing for a while and returns it.
func steady(n func() int64) int64 {
	last := n()
	for stable := 0; stable < 20; stable++ {
		time.Sleep(100 * time.Millisecond)
		if now := n(); now != last {
			last, stable = now, 0
		}
	}
	return last
}

func TestInWatchModeOnlyTheLeaderReconcilesATrigger(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	cp.InstallK8sClass(t)
	install := cp.NewNamespace(t, "connectors-system")
	target := newProbedTarget(t)
	cp.CreateCASecret(t, install, "target-ca", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: target.Certificate().Raw}))
	ns := cp.NewNamespace(t, "demo")
	secret := testbed.BearerSecret(ns, "k8s-secret", "target-token")
	captured.Secret("target-token")
	if err := cp.Client.Create(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	role, err := chart.RBAC("trigger-role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cp.MustKubectl(t, string(role), "apply", "-f", "-")
	cp.CreateServiceAccount(t, install, "source")
	cp.MustKubectl(t, "", "create", "clusterrolebinding", "source-trigger", "--clusterrole=connectors-trigger", "--serviceaccount="+install+":source")
	token, _ := cp.RequestToken(t, install, "source", testbed.TokenOptions{Audiences: []string{"connectors-control"}})
	captured.Secret(token)

	leader := startController(t, cp, install)
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k8s-connector"},
		Spec: connectorsv1alpha1.ConnectorSpec{ConnectorClassName: "k8s", Address: target.URL,
			Auth: connectorsv1alpha1.ConnectorAuth{Name: "bearerTokenAuth", SecretRef: &connectorsv1alpha1.SecretReference{Name: "k8s-secret"}}},
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	cp.WaitForConnector(t, ns, "k8s-connector", "Ready True (the leader reconciles)", testbed.ReadyTrue)
	follower := startController(t, cp, install)
	before := steady(target.probes.Load)

	t.Run("a trigger sent to the replica that does not lead changes nothing", func(t *testing.T) {
		follower.trigger(t, token, ns, "k8s-connector")
		if after := steady(target.probes.Load); after != before {
			t.Fatalf("the target was probed %d times after a trigger to the follower, want 0", after-before)
		}
	})
	t.Run("a trigger sent to the leader reconciles the connector once", func(t *testing.T) {
		start := steady(target.probes.Load)
		leader.trigger(t, token, ns, "k8s-connector")
		if got := steady(target.probes.Load) - start; got != 2 {
			t.Fatalf("the target was probed %d times after a trigger to the leader, want 2 (liveness and auth, once)", got)
		}
	})
	t.Run("once the follower leads, it reconciles", func(t *testing.T) {
		start := steady(target.probes.Load)
		leader.stop(t)
		waitFor(t, "the new leader to probe the target", func() bool { return target.probes.Load() > start })
	})
}
