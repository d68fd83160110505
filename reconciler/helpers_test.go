//go:build integration

package reconciler_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/reconciler"
)

// namespace creates a fresh namespace.
func namespace(t testing.TB, prefix string) string {
	t.Helper()
	return cp.NewNamespace(t, prefix)
}

// reconcilerOptions returns options with an install namespace of its own
// that trusts the test control plane's CA.
func reconcilerOptions(t testing.TB, rec reconciler.EventRecorder) reconciler.Options {
	t.Helper()
	install := namespace(t, "install")
	cp.CreateCASecret(t, install, "apiserver-ca", cp.Config.CAData)
	return reconciler.Options{Client: cp.Client, Recorder: rec, Namespace: install, ProbeTimeout: 3 * time.Second}
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

func bearerSecret(t testing.TB, ns, name, token string) *corev1.Secret {
	t.Helper()
	s := testbed.BearerSecret(ns, name, token)
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
