//go:build integration

package control_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/reconciler"
)

// namespace creates a fresh namespace (with its "default" ServiceAccount).
func namespace(t testing.TB, prefix string) string {
	t.Helper()
	return cp.NewNamespace(t, prefix)
}

// reconcilerOptions returns reconciler options on the uncached client with
// an install namespace of their own that trusts the control plane's CA.
func reconcilerOptions(t testing.TB) reconciler.Options {
	t.Helper()
	install := namespace(t, "install")
	cp.CreateCASecret(t, install, "apiserver-ca", cp.Config.CAData)
	rec, stop := reconciler.NewEventRecorder(cp.Clientset, cp.Scheme, "connectors-control")
	t.Cleanup(stop)
	return reconciler.Options{Client: cp.Client, Recorder: rec, Namespace: install, ProbeTimeout: 3 * time.Second}
}

// serverless serves the control API in serverless mode (a Runner) with
// options changed by mod.
func serverless(t testing.TB, mod func(*control.Options)) *httptest.Server {
	t.Helper()
	runner, err := reconciler.NewRunner(reconcilerOptions(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, control.Options{Runner: runner}, mod)
}

// serve completes opts (clients, the gateway CA, a captured logger),
// applies mod and serves the control API on a test HTTP server.
func serve(t testing.TB, opts control.Options, mod func(*control.Options)) *httptest.Server {
	t.Helper()
	opts.Clientset, opts.Reader, opts.Logger = cp.Clientset, cp.Client, captured.Logger(t.Name())
	opts.ProxyCA = func() ([]byte, error) { return gatewayCA, nil }
	opts.Rate, opts.Burst = 100, 100
	if mod != nil {
		mod(&opts)
	}
	s, err := control.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// call sends a request with the bearer token (none if empty) and returns
// the status and the body.
func call(t testing.TB, method, url, bearer string, headers map[string]string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// errorOf decodes the {"error": ...} body of a refusal.
func errorOf(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %q is not the JSON error: %v", body, err)
	}
	return e.Error
}

// triggerCaller creates a ServiceAccount in its own namespace, grants it
// the shipped trigger ClusterRole (update on connectors/status) cluster-wide
// when bound is set, and returns a token of it for the trigger audience.
func triggerCaller(t testing.TB, name string, bound bool) string {
	t.Helper()
	ns := namespace(t, "trigger")
	cp.CreateServiceAccount(t, ns, name)
	if bound {
		cp.MustKubectl(t, triggerRole(t), "apply", "-f", "-")
		cp.MustKubectl(t, "", "create", "clusterrolebinding", "trigger-"+ns+"-"+name, "--clusterrole=connectors-trigger", "--serviceaccount="+ns+":"+name)
	}
	tok, _ := cp.RequestToken(t, ns, name, testbed.TokenOptions{Audiences: []string{control.DefaultTriggerAudience}})
	captured.Secret(tok)
	return tok
}

// triggerRole is the shipped ClusterRole of trigger callers.
func triggerRole(t testing.TB) string {
	t.Helper()
	b, err := chart.RBAC("trigger-role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// applyQuickstart applies the quick start's Secret and Connector in ns and
// publishes the connector's status as the reconciler would.
func applyQuickstart(t testing.TB, ns string) *connectorsv1alpha1.Connector {
	t.Helper()
	cp.InstallK8sClass(t)
	cp.MustKubectl(t, testbed.QuickstartManifests("", ""), "apply", "-n", ns, "-f", "-")
	captured.Secret(testbed.QuickstartToken)
	return publish(t, ns, "k8s-connector", metav1.ConditionTrue)
}

// createConnector creates a connector of the k8s class in ns and publishes
// a status with Ready status.
func createConnector(t testing.TB, ns, name string, status metav1.ConditionStatus) *connectorsv1alpha1.Connector {
	t.Helper()
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       connectorsv1alpha1.ConnectorSpec{ConnectorClassName: "k8s", Address: "https://192.168.1.100:6443"},
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return publish(t, ns, name, status)
}

func publish(t testing.TB, ns, name string, status metav1.ConditionStatus) *connectorsv1alpha1.Connector {
	t.Helper()
	var c connectorsv1alpha1.Connector
	if err := cp.Client.Get(t.Context(), keyOf(ns, name), &c); err != nil {
		t.Fatal(err)
	}
	reason, msg := "", ""
	if status != metav1.ConditionTrue {
		reason, msg = connectorsv1alpha1.ReasonAuthenticationFailed, "the target refused the credential: update the Secret"
	}
	cp.PublishStatus(t, &c, status, reason, msg, "http://c-"+name+"."+ns+".svc.cluster.local")
	return &c
}

// bearerSecret creates a bearer-token Secret.
func bearerSecret(t testing.TB, ns, name, token string) *corev1.Secret {
	t.Helper()
	s := testbed.BearerSecret(ns, name, token)
	if err := cp.Client.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	captured.Secret(token)
	return s
}

func keyOf(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
