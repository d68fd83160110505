package testbed

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// GitHubAPI is a GitHub-Enterprise-shaped REST API (/api/v3/…) over TLS
// that takes one token (Authorization: Bearer or token) and records the
// Authorization of every request. It listens on this machine's first
// non-loopback IPv4 address, not on loopback: Go programs (gh) never send
// requests for loopback addresses through HTTPS_PROXY, and the point of
// the test is the forward proxy. Traffic to that address stays on this
// machine.
type GitHubAPI struct {
	*httptest.Server
	// URL is https://<address>:<port>; the API is below /api/v3/.
	URL string
	// CAPEM is the server's (self-signed) certificate.
	CAPEM []byte
	token string
	mu    sync.Mutex
	auths []string
	paths []string
}

// StartGitHubAPI starts a GitHubAPI until the test ends.
func StartGitHubAPI(tb testing.TB, token string) *GitHubAPI {
	tb.Helper()
	ip := hostIPv4(tb)
	certPEM, keyPEM := selfSignedCert(tb, []net.IP{ip})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := (&net.ListenConfig{}).Listen(tb.Context(), "tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		tb.Fatal(err)
	}
	g := &GitHubAPI{CAPEM: certPEM, token: token}
	g.Server = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(g.serve), ReadHeaderTimeout: 10 * time.Second}}
	g.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	g.StartTLS()
	tb.Cleanup(g.Close)
	g.URL = "https://" + l.Addr().String()
	return g
}

func (g *GitHubAPI) serve(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	g.mu.Lock()
	g.auths = append(g.auths, auth)
	g.paths = append(g.paths, r.URL.Path)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if auth != "Bearer "+g.token && auth != "token "+g.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`))
		return
	}
	w.Header().Set("X-OAuth-Scopes", "repo, read:org")
	switch r.URL.Path {
	case "/api/v3/user":
		_ = json.NewEncoder(w).Encode(map[string]any{"login": "octo-ci", "id": 1, "type": "User"})
	case "/api/v3/repos/org/app":
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 2, "name": "app", "full_name": "org/app", "private": true, "default_branch": "main"})
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"Not Found"}`))
	}
}

// Requests returns the paths requested, and whether each request carried
// the token.
func (g *GitHubAPI) Requests() (paths []string, allCarryToken bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	allCarryToken = len(g.auths) > 0
	for _, a := range g.auths {
		if a != "Bearer "+g.token && a != "token "+g.token {
			allCarryToken = false
		}
	}
	return append([]string(nil), g.paths...), allCarryToken
}

// hostIPv4 is the first IPv4 address of an interface that is up and not
// loopback.
func hostIPv4(tb testing.TB) net.IP {
	tb.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		tb.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.To4()
			}
		}
	}
	tb.Fatal("testbed: no interface has a non-loopback IPv4 address; Go clients (gh) never proxy loopback, so this test needs one (any up interface with an address)")
	return nil
}
