//go:build integration

package devenv_test

import (
	"bytes"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/internal/devenv"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestDevKeepsTheGatewayCAOfAnEarlierRun: kubeconfigs rendered by an
// earlier `connectors dev --kubeconfig` carry its CA, so a restart reuses it.
func TestDevKeepsTheGatewayCAOfAnEarlierRun(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	_, stored, storedKey, err := gateway.GenerateCA("earlier run")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		secret map[string][]byte // nil: no Secret
		reused bool
	}{
		{"without a stored CA a new one is generated", nil, false},
		{"a stored CA is reused", map[string][]byte{corev1.TLSCertKey: stored, corev1.TLSPrivateKeyKey: storedKey}, true},
		{"a stored CA that cannot be parsed is replaced by a new one", map[string][]byte{corev1.TLSCertKey: []byte("not PEM"), corev1.TLSPrivateKeyKey: storedKey}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := cp.NewNamespace(t, "dev-ca")
			if tc.secret != nil {
				if err := cp.Client.Create(t.Context(), &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: devenv.GatewayCASecret}, Type: corev1.SecretTypeTLS, Data: tc.secret,
				}); err != nil {
					t.Fatal(err)
				}
			}
			ca, certPEM, keyPEM, err := devenv.GatewayCA(t.Context(), cp.Client, ns, logr.Discard())
			if err != nil {
				t.Fatal(err)
			}
			if ca == nil || len(keyPEM) == 0 {
				t.Fatal("no usable CA returned")
			}
			if got := bytes.Equal(certPEM, stored); got != tc.reused {
				t.Errorf("the stored CA was reused: %v, want %v", got, tc.reused)
			}
		})
	}
}
