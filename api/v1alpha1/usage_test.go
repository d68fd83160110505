package v1alpha1_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

func usableConnector() *connectorsv1alpha1.Connector {
	c := &connectorsv1alpha1.Connector{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "k8s", Generation: 2}}
	c.Status.ObservedGeneration = 2
	c.Status.Conditions = append(allTrue(), cond(connectorsv1alpha1.ConditionReady, metav1.ConditionTrue, ""))
	c.Status.Proxy = &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{URL: "http://c-k8s.demo.svc.cluster.local"}}
	return c
}

func TestUsable(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*connectorsv1alpha1.Connector)
		say  []string // empty: usable
	}{
		{name: "a Ready connector whose status describes its spec and has a proxy address is usable", mod: func(*connectorsv1alpha1.Connector) {}},
		{name: "a connector without a status is not usable and says so", mod: func(c *connectorsv1alpha1.Connector) { c.Status = connectorsv1alpha1.ConnectorStatus{} },
			say: []string{"connector demo/k8s is not Ready", "no Ready condition yet", "kubectl describe connector k8s -n demo"}},
		{name: "a connector whose Ready is False names the first False condition with reason and message", mod: func(c *connectorsv1alpha1.Connector) {
			c.Status.Conditions = with(c.Status.Conditions, cond(connectorsv1alpha1.ConditionAuthReady, metav1.ConditionUnknown, "Waiting"))
			c.Status.Conditions = with(c.Status.Conditions, cond(connectorsv1alpha1.ConditionLivenessReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed))
			c.Status.Conditions = with(c.Status.Conditions, cond(connectorsv1alpha1.ConditionReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed))
		}, say: []string{"connector demo/k8s is not Ready: LivenessReady is False (ConnectionFailed: ConnectionFailed message)"}},
		{name: "a connector whose Ready is Unknown names the first condition that is not True", mod: func(c *connectorsv1alpha1.Connector) {
			c.Status.Conditions = with(c.Status.Conditions, cond(connectorsv1alpha1.ConditionProxyServiceReady, metav1.ConditionUnknown, "Pending"))
			c.Status.Conditions = with(c.Status.Conditions, cond(connectorsv1alpha1.ConditionReady, metav1.ConditionUnknown, "Pending"))
		}, say: []string{"ProxyServiceReady is Unknown (Pending: Pending message)"}},
		{name: "a status with only a Ready condition names Ready", mod: func(c *connectorsv1alpha1.Connector) {
			c.Status.Conditions = []connectorsv1alpha1.Condition{cond(connectorsv1alpha1.ConditionReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed)}
		}, say: []string{"Ready is False (AuthenticationFailed: AuthenticationFailed message)"}},
		{name: "a multi-line condition message is kept on one line", mod: func(c *connectorsv1alpha1.Connector) {
			c.Status.Conditions = []connectorsv1alpha1.Condition{{Type: connectorsv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "X", Message: "a\nb"}}
		}, say: []string{"(X: a b)"}},
		{name: "a Ready connector whose spec changed after its last reconcile is not usable", mod: func(c *connectorsv1alpha1.Connector) { c.Generation = 3 },
			say: []string{"connector demo/k8s changed (generation 3) and has not been checked again yet (its status describes generation 2)"}},
		{name: "a Ready connector without a proxy address is not usable", mod: func(c *connectorsv1alpha1.Connector) { c.Status.Proxy = nil },
			say: []string{"connector demo/k8s has no proxy address yet"}},
		{name: "a Ready connector of a class without a proxy (ProxyServiceReady NonProxy) is usable without an address", mod: func(c *connectorsv1alpha1.Connector) {
			c.Status.Proxy = nil
			c.Status.Conditions = with(c.Status.Conditions, cond(connectorsv1alpha1.ConditionProxyServiceReady, metav1.ConditionTrue, connectorsv1alpha1.ReasonNonProxy))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := usableConnector()
			tt.mod(c)
			err := c.Usable()
			if len(tt.say) == 0 {
				if err != nil {
					t.Fatalf("Usable() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, connectorsv1alpha1.ErrNotUsable) {
				t.Fatalf("Usable() = %v, want an error wrapping ErrNotUsable", err)
			}
			for _, s := range tt.say {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Usable() = %q, want it to say %q", err, s)
				}
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("Usable() = %q spans lines", err)
			}
		})
	}
}

func TestProxyURL(t *testing.T) {
	refs := []connectorsv1alpha1.ConnectorRef{{Namespace: "ns", Name: "x"}}
	tests := []struct {
		name, address, want, wantErr string
		refs                         []connectorsv1alpha1.ConnectorRef
	}{
		{name: "the user is namespace/name URL-encoded and the token the password", address: "http://c-x.ns.svc.cluster.local", refs: refs, want: "http://ns%2Fx:tok@c-x.ns.svc.cluster.local"},
		{name: "a port and a path are kept", address: "http://127.0.0.1:8081/p", refs: refs, want: "http://ns%2Fx:tok@127.0.0.1:8081/p"},
		{name: "several connectors are comma separated", address: "http://gw", refs: append(refs, connectorsv1alpha1.ConnectorRef{Namespace: "b", Name: "y"}), want: "http://ns%2Fx%2Cb%2Fy:tok@gw"},
		{name: "the TLS reverse proxy's https address is its host's forward proxy on port 80", address: "https://c-x.ns.svc.cluster.local", refs: refs, want: "http://ns%2Fx:tok@c-x.ns.svc.cluster.local"},
		{name: "an address without a host is an error", address: "c-x", refs: refs, wantErr: "not an absolute URL"},
		{name: "no connector is an error", address: "http://gw", wantErr: "at least one connector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := connectorsv1alpha1.ProxyURL(tt.address, "tok", tt.refs...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ProxyURL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestReferencedSecrets(t *testing.T) {
	c := &connectorsv1alpha1.Connector{}
	if got := c.ReferencedSecrets(); len(got) != 0 {
		t.Errorf("a connector without Secrets references %v", got)
	}
	c.Spec.Auth.SecretRef = &connectorsv1alpha1.SecretReference{Name: "cred"}
	c.Spec.CACertSecretRef = &connectorsv1alpha1.LocalSecretReference{Name: "ca"}
	if got := c.ReferencedSecrets(); strings.Join(got, ",") != "cred,ca" {
		t.Errorf("ReferencedSecrets() = %v, want [cred ca]", got)
	}
}

func TestAppendCABundleReadsCertificateKeysAndPEMValuesAsTheOriginalDoes(t *testing.T) {
	testCA := selfSigned(t)
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want bool
	}{
		{name: "ca.crt", data: map[string][]byte{"ca.crt": testCA}, want: true},
		{name: "a key ending in .pem", data: map[string][]byte{"corp-root.pem": testCA}, want: true},
		{name: "tls.crt of a TLS Secret", data: map[string][]byte{"tls.crt": testCA, "tls.key": []byte("-----BEGIN PRIVATE KEY-----")}, want: true},
		{name: "a PEM certificate under any key", data: map[string][]byte{"bundle": testCA}, want: true},
		{name: "a .crt key without PEM", data: map[string][]byte{"ca.crt": []byte("not pem")}, want: false},
		{name: "only a private key", data: map[string][]byte{"tls.key": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := connectorsv1alpha1.AppendCABundle(x509.NewCertPool(), &corev1.Secret{Data: tc.data}); got != tc.want {
				t.Errorf("AppendCABundle = %v, want %v", got, tc.want)
			}
		})
	}
}

// selfSigned returns a PEM self-signed CA certificate (ECDSA P-256).
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
