package testbed_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// jwt is shaped like a ServiceAccount token (header, payload, signature);
// no test registers it.
const jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVtbzpqb2IifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1hdC1sZWFzdC0zMi1ieXRlcw"

func privateKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestLogCaptureFailsOnEverySecretItSeesAndNamesNone(t *testing.T) {
	key := privateKeyPEM(t)
	rsaHeader := strings.Replace(key, "PRIVATE KEY", "RSA PRIVATE KEY", 1)
	for _, tt := range []struct {
		name     string
		register string // a secret registered before the line is logged
		log      func(c *testbed.LogCapture)
		leaked   string // what the error must not print; "" when nothing leaks
		say      string // what the error must say
	}{
		{
			name: "a registered Secret value is found", register: "the-connector-secret",
			log: func(c *testbed.LogCapture) {
				c.Logger("gateway").Info("request", "header", "Bearer the-connector-secret")
			},
			leaked: "the-connector-secret", say: "registered secret #0",
		},
		{
			name: "a registered secret base64-encoded (a Secret's data) is found", register: "the-connector-secret",
			log: func(c *testbed.LogCapture) {
				c.Logger("controller").Info("object", "data", base64.StdEncoding.EncodeToString([]byte("the-connector-secret")))
			},
			leaked: base64.StdEncoding.EncodeToString([]byte("the-connector-secret")), say: "registered secret #0",
		},
		{
			name: "an unregistered JWT in a proxy URL is found, with its logger and key",
			log: func(c *testbed.LogCapture) {
				c.Logger("gateway").Info("dial", "proxyURL", "http://demo%2Fk8s:"+jwt+"@gateway:8080")
			},
			leaked: jwt, say: `a JWT on line 1 (logger gateway, key proxyURL)`,
		},
		{
			name: "an unregistered JWT in a process's JSON line is found",
			log: func(c *testbed.LogCapture) {
				_, _ = c.Write([]byte("{\"level\":\"info\"}\n{\"logger\":\"csi\",\"token\":\"" + jwt + "\"}\n"))
			},
			leaked: jwt, say: `a JWT on line 2 (logger csi, key token)`,
		},
		{
			name:   "a PEM private key is found",
			log:    func(c *testbed.LogCapture) { c.Logger("init").Info("wrote", "ca.key", key) },
			leaked: key[40:80], say: "a PEM private key",
		},
		{
			name:   "a PEM RSA private key is found",
			log:    func(c *testbed.LogCapture) { _, _ = c.Write([]byte(rsaHeader)) },
			leaked: rsaHeader[40:80], say: "a PEM private key",
		},
		{
			name: "a base64-encoded PEM private key (a kubeconfig's client-key-data) is found",
			log: func(c *testbed.LogCapture) {
				_, _ = c.Write([]byte("    client-key-data: " + base64.StdEncoding.EncodeToString([]byte(key)) + "\n"))
			},
			leaked: base64.StdEncoding.EncodeToString([]byte(key))[:40], say: "a base64-encoded PEM private key",
		},
		{
			name:   "a secret logged into a child fails the parent's check",
			log:    func(c *testbed.LogCapture) { c.Child().Logger("gateway").Info("request", "token", jwt) },
			leaked: jwt, say: "a JWT",
		},
		{
			name: "a secret registered on a child fails the parent's check",
			log: func(c *testbed.LogCapture) {
				child := c.Child()
				child.Secret("registered-on-the-child")
				_, _ = c.Write([]byte("registered-on-the-child\n"))
			},
			leaked: "registered-on-the-child", say: "registered secret #0",
		},
		{
			name: "a clean log passes: redacted tokens, certificates, short values, JWT-like fragments",
			log: func(c *testbed.LogCapture) {
				c.Logger("gateway").Info("request", "token", "[redacted]", "user", "eyJhbGciOi", "ca", "-----BEGIN CERTIFICATE-----", "short", "secret")
			},
			register: "secret",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &testbed.LogCapture{}
			if tt.register != "" {
				c.Secret(tt.register)
			}
			tt.log(c)
			err := c.Check()
			if tt.say == "" {
				if err != nil {
					t.Fatalf("Check: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check found nothing")
			}
			if !strings.Contains(err.Error(), tt.say) {
				t.Errorf("Check: %v, want it to say %q", err, tt.say)
			}
			if strings.Contains(err.Error(), tt.leaked) {
				t.Error("the error of Check prints the secret")
			}
		})
	}
}

func TestAChildCaptureKeepsItsLinesApartAndItsParentSeesThemAll(t *testing.T) {
	parent := &testbed.LogCapture{}
	a, b := parent.Child(), parent.Child()
	a.Logger("a").Info("first")
	b.Logger("b").Info("second")
	a.Secret("a-secret-value")
	a.Secret("a-secret-value")
	if strings.Contains(a.Text(), "second") || !strings.Contains(a.Text(), "first") {
		t.Errorf("child a holds %q, want its own line only", a.Text())
	}
	if !strings.Contains(parent.Text(), "first") || !strings.Contains(parent.Text(), "second") {
		t.Errorf("the parent holds %q, want both children's lines", parent.Text())
	}
	if a.Secrets() != 1 || parent.Secrets() != 1 || b.Secrets() != 0 {
		t.Errorf("secrets: a %d, parent %d, b %d; want 1, 1 (once each), 0", a.Secrets(), parent.Secrets(), b.Secrets())
	}
}
