package reconciler_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/reconciler"
)

// namespace creates a fresh namespace.
func namespace(t testing.TB, prefix string) string {
	t.Helper()
	return cp.NewNamespace(t, prefix)
}

var classOnce sync.Once

// installK8sClass applies the shipped k8s class once per run.
func installK8sClass(t testing.TB) {
	t.Helper()
	classOnce.Do(func() {
		raw, err := chart.Class("k8s")
		if err != nil {
			t.Fatal(err)
		}
		var class connectorsv1alpha1.ConnectorClass
		if err := yaml.UnmarshalStrict(raw, &class); err != nil {
			t.Fatal(err)
		}
		if err := cp.Client.Create(context.Background(), &class); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	})
}

// reconcilerOptions returns options with an install namespace of its own
// that trusts the test control plane's CA.
func reconcilerOptions(t testing.TB, rec reconciler.EventRecorder) reconciler.Options {
	t.Helper()
	install := namespace(t, "install")
	caSecret(t, install, "apiserver-ca", cp.Config.CAData)
	return reconciler.Options{Client: cp.Client, Recorder: rec, Namespace: install, ProbeTimeout: 3 * time.Second}
}

// caSecret creates a CA Secret labelled for trust.
func caSecret(t testing.TB, ns, name string, pemBytes []byte) {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{reconciler.CACertLabel: "true"}},
		Data:       map[string][]byte{"ca.crt": pemBytes},
	}
	if err := cp.Client.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

// startController runs watch mode until the test ends.
func startController(t testing.TB, opts reconciler.Options) {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 cp.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  reconciler.CacheOptions(),
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Client, opts.APIReader = mgr.GetClient(), mgr.GetAPIReader()
	ctx, cancel := context.WithCancel(context.Background())
	if err := reconciler.SetupWithManager(ctx, mgr, opts, reconciler.WatchOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// recorder starts an event recorder writing to the control plane.
func recorder(t testing.TB) reconciler.EventRecorder {
	t.Helper()
	rec, stop := reconciler.NewEventRecorder(cp.Clientset, cp.Scheme, "connectors-controller")
	t.Cleanup(stop)
	return rec
}

// targetToken returns a bearer token of a ServiceAccount of the control
// plane that may list pods: the "target cluster" credential.
func targetToken(t testing.TB) string {
	t.Helper()
	ns := namespace(t, "target")
	cp.CreateServiceAccount(t, ns, "reader")
	ctx := t.Context()
	_, err := cp.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "reader"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := cp.RequestToken(t, ns, "reader", testbed.TokenOptions{Expiration: time.Hour})
	return tok
}

func bearerSecret(t testing.TB, ns, name, token string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       connectorsv1alpha1.SecretTypeBearerToken,
		StringData: map[string]string{"token": token},
	}
	if err := cp.Client.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func connector(t testing.TB, ns, name, class, address, secret string) *connectorsv1alpha1.Connector {
	t.Helper()
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: connectorsv1alpha1.ConnectorSpec{
			ConnectorClassName: class, Address: address,
			Auth: connectorsv1alpha1.ConnectorAuth{Name: "bearerTokenAuth", SecretRef: &connectorsv1alpha1.SecretReference{Name: secret}},
		},
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls the connector until check passes (or 30s pass: a bound for
// a hung test, not a speed assertion) and returns it.
func waitFor(t testing.TB, ns, name string, what string, check func(*connectorsv1alpha1.Connector) bool) *connectorsv1alpha1.Connector {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var c connectorsv1alpha1.Connector
	for {
		err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &c)
		if err == nil && check(&c) {
			return &c
		}
		if time.Now().After(deadline) {
			t.Fatalf("connector %s/%s: %s did not happen; conditions: %s", ns, name, what, describe(&c))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(c *connectorsv1alpha1.Connector) string {
	var b strings.Builder
	for _, cd := range c.Status.Conditions {
		b.WriteString("\n  " + cd.Type + "=" + string(cd.Status) + " " + cd.Reason + ": " + cd.Message)
	}
	return b.String()
}

// conditionIs returns a check for a condition's status and reason.
func conditionIs(t string, s metav1.ConditionStatus, reason string) func(*connectorsv1alpha1.Connector) bool {
	return func(c *connectorsv1alpha1.Connector) bool {
		cd := connectorsv1alpha1.FindCondition(c.Status.Conditions, t)
		return cd != nil && cd.Status == s && (reason == "" || cd.Reason == reason) && c.Status.ObservedGeneration == c.Generation
	}
}

func readyTrue(c *connectorsv1alpha1.Connector) bool {
	return conditionIs(connectorsv1alpha1.ConditionReady, metav1.ConditionTrue, "")(c)
}

// waitForEvent waits for an event about the connector with the reason.
func waitForEvent(t testing.TB, ns, name, eventType, reason string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := cp.Clientset.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err == nil {
			for _, e := range list.Items {
				if e.Type == eventType && e.Reason == reason {
					return e
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event %s about connector %s/%s", eventType, reason, ns, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tlsTarget is a local HTTPS server with its own CA that answers /livez and
// /api like a kube-apiserver, accepting one bearer token.
type tlsTarget struct {
	*httptest.Server
	token atomic.Value
}

func newTLSTarget(t testing.TB, token string) *tlsTarget {
	t.Helper()
	tt := &tlsTarget{}
	tt.token.Store(token)
	tt.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/livez":
			_, _ = w.Write([]byte("ok"))
		case "/api":
			if r.Header.Get("Authorization") != "Bearer "+tt.token.Load().(string) {
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"kind":"APIVersions","versions":["v1"]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	tt.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	tt.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose are not news
	tt.StartTLS()
	t.Cleanup(tt.Close)
	return tt
}

// caPEM is the PEM of the target's (self-signed) certificate.
func (tt *tlsTarget) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tt.Certificate().Raw})
}
