package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Harbor is a Harbor-shaped server over TLS on loopback, named localhost:
// Harbor's health API (open), its current-user and projects APIs (one
// user's Basic credential), and its registry under /v2/: a distribution
// registry (StartRegistry) that takes only tokens of its token service, as
// Harbor's does. It records the Authorization of every API request.
type Harbor struct {
	*httptest.Server
	// URL is https://localhost:<port>.
	URL string
	// CAPEM holds the certificates of the server, its registry and the
	// registry's token service.
	CAPEM []byte
	// Registry serves /v2/.
	Registry   *Registry
	user, pass string
	mu         sync.Mutex
	auths      []string
	paths      []string
}

// StartHarbor starts a Harbor until the test ends.
func StartHarbor(tb testing.TB, user, pass string) *Harbor {
	tb.Helper()
	reg := StartRegistry(tb, RegistryOptions{User: user, Password: pass, TokenAuth: true})
	target, err := url.Parse(reg.URL)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(reg.CAPEM)
	registry := &httputil.ReverseProxy{
		// The registry forms its upload Locations from the Host the
		// client used: Harbor's.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
	}
	certPEM, keyPEM := loopbackCert(tb)
	h := &Harbor{Registry: reg, CAPEM: append(append([]byte(nil), certPEM...), reg.CAPEM...), user: user, pass: pass}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/") || r.URL.Path == "/v2" {
			registry.ServeHTTP(w, r)
			return
		}
		h.serveAPI(w, r)
	}))
	h.URL = serveLocalhostTLS(tb, h.Server, certPEM, keyPEM)
	return h
}

func (h *Harbor) serveAPI(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.auths = append(h.auths, r.Header.Get("Authorization"))
	h.paths = append(h.paths, r.URL.Path)
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/api/v2.0/health" {
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "healthy", "components": []map[string]string{{"name": "core", "status": "healthy"}, {"name": "registry", "status": "healthy"}}})
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != h.user || p != h.pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="harbor"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}`))
		return
	}
	switch r.URL.Path {
	case "/api/v2.0/users/current":
		_ = json.NewEncoder(w).Encode(map[string]any{"user_id": 3, "username": h.user})
	case "/api/v2.0/projects":
		_ = json.NewEncoder(w).Encode([]map[string]any{{"project_id": 2, "name": "team", "repo_count": 1}})
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[{"code":"NOT_FOUND","message":"not found"}]}`))
	}
}

// APIRequests returns the paths of the API requests, and whether each one
// carried the user's credential (the open health API aside).
func (h *Harbor) APIRequests() (paths []string, allCredentialed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var auths []string
	for i, p := range h.paths {
		if p != "/api/v2.0/health" {
			auths = append(auths, h.auths[i])
		}
	}
	return append([]string(nil), h.paths...), allCarry(auths, h.user, h.pass)
}
