package tlsconfig_test

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/connectors-io/connectors/internal/tlsconfig"
)

func TestThePolicyIsTLS12OrLaterWithOnlySecureECDHEAEADSuites(t *testing.T) {
	c := tlsconfig.Modern(&tls.Config{ServerName: "example.com"})
	if c.MinVersion != tls.VersionTLS12 || c.ServerName != "example.com" {
		t.Errorf("MinVersion %x, ServerName %q: want TLS 1.2 and the caller's name kept", c.MinVersion, c.ServerName)
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range c.CipherSuites {
		name := tls.CipherSuiteName(id)
		aead := strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")
		if insecure[id] || !strings.HasPrefix(name, "TLS_ECDHE_") || strings.Contains(name, "CBC") || !aead {
			t.Errorf("%s is not an ECDHE suite with AEAD", name)
		}
	}
	if len(c.CipherSuites) == 0 {
		t.Error("no suites")
	}
	c.CipherSuites[0] = tls.TLS_RSA_WITH_RC4_128_SHA
	if slices.Contains(tlsconfig.Suites(), tls.TLS_RSA_WITH_RC4_128_SHA) {
		t.Error("Suites shares its slice between callers")
	}
}
