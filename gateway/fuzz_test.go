package gateway

import (
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"testing"
)

// FuzzProxyAuthorization: any header parses without panic; what passes
// names at most 16 valid connectors and a token, and no refusal quotes the
// password.
func FuzzProxyAuthorization(f *testing.F) {
	for _, s := range []string{"", "Basic", "Basic ", "Bearer x", "basic " + b64("ns/c:tok"), "Basic " + b64("ns/c,ns2/d:eyJhbGciOi"),
		"Basic " + b64("tok:ns/c"), "Basic " + b64("ns%2Fc:tok"), "Basic " + b64("../..:tok"), "Basic " + b64(strings.Repeat("a/b,", 20)+":t"),
		"Basic !!!", "Basic " + b64("ns/c:"), "Basic " + b64(":tok")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		refs, password, perror := parseProxyAuthorization(h)
		if perror != nil {
			if perror.status != 407 {
				t.Fatalf("status %d for a malformed header, want 407", perror.status)
			}
			if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(h, "Basic "))); err == nil {
				if _, pw, ok := strings.Cut(string(raw), ":"); ok && len(pw) >= 6 && strings.Contains(perror.msg, pw) {
					t.Fatalf("the refusal %q quotes the password", perror.msg)
				}
			}
			return
		}
		if password == "" || len(refs) == 0 || len(refs) > 16 {
			t.Fatalf("accepted %d connectors and a %d-byte token", len(refs), len(password))
		}
		for _, r := range refs {
			if !r.Valid() {
				t.Fatalf("accepted an invalid connector reference %q", r.String())
			}
		}
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// FuzzConnectTarget: a CONNECT target matches a connector's address only
// when it names exactly that host and port (defaults 443/80), whatever the
// spelling of either.
func FuzzConnectTarget(f *testing.F) {
	for _, s := range [][2]string{
		{"https://127.0.0.1:6443", "127.0.0.1:6443"}, {"https://127.0.0.1:6443", "2130706433:6443"}, {"https://Api.Example:443", "api.example:443"},
		{"https://api.example", "api.example:443"}, {"https://[::1]:6443", "[::1]:6443"}, {"https://[::1]:6443", "[::ffff:127.0.0.1]:6443"},
		{"https://user@host:1/x", "host:1"}, {"http://h", "h:80"}, {"https://h.", "h:443"}, {"https://h", "h.:443"}, {"https://h:0443", "h:443"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, address, hostport string) {
		for _, scheme := range []string{"https", "http"} {
			if !targets([]string{address}, scheme, hostport) {
				continue
			}
			u, err := url.Parse(address)
			if err != nil || u.Scheme != scheme {
				t.Fatalf("%q matched %q although its scheme is not %s", hostport, address, scheme)
			}
			host, port, err := net.SplitHostPort(hostport)
			if err != nil {
				t.Fatalf("%q matched %q but is no host:port", hostport, address)
			}
			want := u.Port()
			if want == "" {
				want = map[string]string{"https": "443", "http": "80"}[scheme]
			}
			if !strings.EqualFold(host, u.Hostname()) || port != want {
				t.Fatalf("%q matched %q: host %q port %q, the address's %q %q", hostport, address, host, port, u.Hostname(), want)
			}
		}
	})
}
