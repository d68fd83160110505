package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/reconciler"
	"github.com/connectors-io/connectors/tokens"
)

// TestControlCommandWithTheGeneratedClusterRole runs `connectors control` as
// a ServiceAccount bound to chart/rbac/role.yaml only: the reconcile and the
// token API must work with exactly the generated permissions.
func TestControlCommandWithTheGeneratedClusterRole(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	ctx := t.Context()
	install := "connectors-system"
	cp.CreateNamespace(t, install)
	cp.CreateServiceAccount(t, install, "connectors-controller")
	role, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "chart", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cp.MustKubectl(t, string(role), "apply", "-f", "-")
	if _, err := cp.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "connectors-controller"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "connectors-controller"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: install, Name: "connectors-controller"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := impersonatingKubeconfig(t, cp.KubeconfigPath, "system:serviceaccount:"+install+":connectors-controller")

	// The quick start's objects, the target being the control plane itself.
	raw, err := chart.Class("k8s")
	if err != nil {
		t.Fatal(err)
	}
	cp.MustKubectl(t, string(raw), "apply", "-f", "-")
	if err := cp.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: install, Name: "apiserver-ca", Labels: map[string]string{reconciler.CACertLabel: "true"}},
		Data:       map[string][]byte{"ca.crt": cp.Config.CAData},
	}); err != nil {
		t.Fatal(err)
	}
	ns := "k8s-connector-demo"
	cp.CreateNamespace(t, ns)
	cp.CreateServiceAccount(t, ns, "runner")
	admin, _ := cp.RequestToken(t, ns, "runner", testbed.TokenOptions{}) // any authenticated token passes GET /api
	cp.MustKubectl(t, "", "create", "secret", "generic", "k8s-secret", "-n", ns, "--type", "connectors.cpaas.io/bearer-token", "--from-literal=token="+admin)
	cp.MustKubectl(t, "apiVersion: connectors.alauda.io/v1alpha1\nkind: Connector\nmetadata:\n  name: k8s-connector\nspec:\n  connectorClassName: k8s\n"+
		"  address: "+strings.TrimSuffix(cp.Config.Host, "/")+"\n  auth:\n    name: bearerTokenAuth\n    secretRef:\n      name: k8s-secret\n", "apply", "-n", ns, "-f", "-")

	port := freePort(t)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		cmd := newRootCommand()
		cmd.SetArgs([]string{"control", "--kubeconfig", kubeconfig, "--port", strconv.Itoa(port), "--namespace", install, "--zap-log-level", "error"})
		done <- cmd.ExecuteContext(runCtx)
	}()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitHealthy(t, base+"/healthz", done)

	resp := postJSON(t, base+"/v1/reconcile/"+ns+"/k8s-connector", "", nil)
	var res reconciler.Result
	if err := json.Unmarshal(resp, &res); err != nil || res.Ready == nil || res.Ready.Status != metav1.ConditionTrue {
		t.Fatalf("reconcile answered %s, want Ready True", resp)
	}

	pod := cp.CreatePod(t, ns, "job", "runner")
	callerToken, _ := cp.RequestToken(t, ns, "runner", testbed.TokenOptions{BoundPod: pod})
	body := postJSON(t, base+"/v1/namespaces/"+ns+"/connectors/k8s-connector/token", callerToken, nil)
	var tr tokens.TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" || !strings.Contains(tr.ProxyURL, ns+"%2Fk8s-connector:") {
		t.Fatalf("token API answered %s", body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("control returned %v after shutdown, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("control did not stop within 15s of its context ending")
	}
}

func impersonatingKubeconfig(t *testing.T, adminPath, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(adminPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "controller.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHealthy(t *testing.T, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("the command exited early: %v", err)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

func postJSON(t *testing.T, url, bearer string, v any) []byte {
	t.Helper()
	var body bytes.Buffer
	if v != nil {
		if err := json.NewEncoder(&body).Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, &body)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, out.String())
	}
	return out.Bytes()
}
