//go:build integration

package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestTheTunnelRefusesTLSBelow12AndWeakSuitesAndOffersModernOnes(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "tls")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
	token, _ := cp.PodToken(t, ns, "job", "default")
	target := strings.TrimPrefix(up.URL, "https://")
	host, _, _ := net.SplitHostPort(target)
	auth := basicAuth(ns+"/rec", string(token))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.ca)

	// The leaves are ECDSA: the weak suites offered are those that could
	// be negotiated with them (ECDHE-ECDSA), so that only the gateway's
	// policy refuses them. Go's client offers the insecure ones only when
	// they are listed.
	for _, tt := range []struct {
		name     string
		min, max uint16
		suites   []uint16
		refusal  string // the alert the client gets; "" if the handshake succeeds
		version  uint16 // negotiated, when it succeeds
		suite    uint16 // negotiated for TLS 1.2
	}{
		{name: "TLS 1.0 and 1.1 are refused", min: tls.VersionTLS10, max: tls.VersionTLS11,
			refusal: "protocol version not supported"},
		{name: "TLS 1.2 with only CBC and RC4 suites is refused", min: tls.VersionTLS12, max: tls.VersionTLS12,
			suites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
			},
			refusal: "handshake failure"},
		{name: "TLS 1.2 with only RSA key exchange is refused", min: tls.VersionTLS12, max: tls.VersionTLS12,
			suites: []uint16{
				tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
			},
			refusal: "handshake failure"},
		{name: "TLS 1.2 with ECDHE-ECDSA-AES128-GCM is served", min: tls.VersionTLS12, max: tls.VersionTLS12,
			suites:  []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.3 is served by default", version: tls.VersionTLS13},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn := openTunnel(t, e, target, auth)
			tc := tls.Client(conn, &tls.Config{
				RootCAs: pool, ServerName: host, NextProtos: []string{"h2"},
				MinVersion: tt.min, MaxVersion: tt.max, CipherSuites: tt.suites,
			})
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			err := tc.HandshakeContext(t.Context())
			if tt.refusal != "" {
				if err == nil {
					st := tc.ConnectionState()
					t.Fatalf("the gateway negotiated %s with %s, want a refusal",
						tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
				if !strings.Contains(err.Error(), "remote error: tls: "+tt.refusal) {
					t.Errorf("handshake: %v, want the gateway's alert %q", err, tt.refusal)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			_ = tc.SetDeadline(time.Time{})
			st := tc.ConnectionState()
			if st.Version != tt.version || (tt.suite != 0 && st.CipherSuite != tt.suite) || st.NegotiatedProtocol != "h2" {
				t.Errorf("negotiated %s, %s, %q; want %s, %s, h2", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite),
					st.NegotiatedProtocol, tls.VersionName(tt.version), tls.CipherSuiteName(tt.suite))
			}
			// The tunnel serves, through the HTTP/2 relay too when it is on.
			in := watchClose(tc)
			cc, err := (&http2.Transport{}).NewClientConn(in)
			if err != nil {
				t.Fatal(err)
			}
			c := &tunnelClient{tc: tc, in: in, h2: cc, url: "https://" + target}
			resp, body, err := c.do(t, "/api", nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || body != "hello from upstream" {
				t.Errorf("got %d %q inside the tunnel, want 200 from the upstream", resp.StatusCode, body)
			}
		})
	}
}
