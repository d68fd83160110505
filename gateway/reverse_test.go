//go:build integration

package gateway_test

import (
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is one request an origin upstream received.
type seen struct {
	method, path, query, body string
	header                    http.Header
}

// origin is a TLS upstream that records the requests it receives, as a git
// server or a package index would see them.
type origin struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newOrigin(t testing.TB) *origin {
	t.Helper()
	o := &origin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		o.mu.Lock()
		o.reqs = append(o.reqs, seen{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, body: string(body), header: r.Header.Clone()})
		o.mu.Unlock()
		_, _ = io.WriteString(w, "hello from the origin")
	}))
	o.Config.ErrorLog = nil
	o.StartTLS()
	t.Cleanup(o.Close)
	return o
}

func (o *origin) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.Certificate().Raw})
}

func (o *origin) last(t *testing.T) seen {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.reqs) == 0 {
		t.Fatal("the origin received no request")
	}
	return o.reqs[len(o.reqs)-1]
}

func (o *origin) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.reqs)
}

// reverseGet sends an origin-form request to the gateway's proxy port
// with the Host host and the given headers.
func reverseGet(t *testing.T, e *env, host, path string, header http.Header) (int, string, http.Header) {
	t.Helper()
	return reverseDo(t, e, http.MethodGet, host, path, "", "", header)
}

// reverseDo sends an origin-form request with a body (and its type, if
// not "") to the gateway's proxy port; it returns the status, the trimmed
// body and the headers of the answer.
func reverseDo(t *testing.T, e *env, method, host, path, contentType, body string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+e.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// TestTheReverseProxyForwardsToTheConnectorThatTheHostOrThePathPrefixNames:
// the host resolver's c-<name>.<ns>.svc… and the path resolver's
// /namespaces/<ns>/connectors/<name> (stripped) both reach the connector's
// address, its path joined with the request's, with the connector's
// credential in place of the pod token, taken from Basic or Bearer.
func TestTheReverseProxyForwardsToTheConnectorThatTheHostOrThePathPrefixNames(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "reverse")
	o := newOrigin(t)
	connectorWith(t, ns, "repo", o.URL+"/base", bearerSecret("upstream-secret"), o.caPEM(), "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")
	gw := e.addr[strings.LastIndex(e.addr, ":"):]

	for _, tt := range []struct {
		name, host, path, want string
		header                 http.Header
	}{
		{"the host resolver's full name, Bearer", "c-repo." + ns + ".svc.cluster.local" + gw, "/org/app.git/info/refs?service=git-upload-pack", "/base/org/app.git/info/refs", bearer(string(tok))},
		{"the host resolver's short name, Basic with any user", "c-repo." + ns, "/x", "/base/x", http.Header{"Authorization": {basicAuth("anyone", string(tok))}}},
		{"the path resolver, Basic without a user", "connectors-proxy-service.connectors-system.svc", "/namespaces/" + ns + "/connectors/repo/org/app.git", "/base/org/app.git", http.Header{"Authorization": {basicAuth("", string(tok))}}},
		{"the path resolver with nothing after the prefix", "127.0.0.1" + gw, "/namespaces/" + ns + "/connectors/repo", "/base", bearer(string(tok))},
		{"both forms at once (the original's docs show them together)", "c-repo." + ns + ".svc.cluster.local", "/namespaces/" + ns + "/connectors/repo/a%2Fb", "/base/a%2Fb", bearer(string(tok))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := reverseGet(t, e, tt.host, tt.path, tt.header)
			if status != http.StatusOK || body != "hello from the origin" {
				t.Fatalf("got %d %q, want 200 from the origin", status, body)
			}
			got := o.last(t)
			if got.path != tt.want {
				t.Errorf("the origin got the path %q, want %q", got.path, tt.want)
			}
			if a := got.header.Get("Authorization"); a != "Bearer upstream-secret" {
				t.Errorf("the origin got Authorization %q, want the connector's credential", a)
			}
			for k, vs := range got.header {
				for _, v := range vs {
					if strings.Contains(v, string(tok)) {
						t.Errorf("the pod token reached the origin in %s", k)
					}
				}
			}
		})
	}

	t.Run("a pod token in another header or the query does not reach the origin", func(t *testing.T) {
		h := bearer(string(tok))
		h.Set("Private-Token", string(tok))
		status, _, _ := reverseGet(t, e, "c-repo."+ns, "/q?private_token="+string(tok)+"&keep=1", h)
		if status != http.StatusOK {
			t.Fatalf("got %d, want 200", status)
		}
		got := o.last(t)
		if got.header.Get("Private-Token") != "" || strings.Contains(got.query, string(tok)) || got.query != "keep=1" {
			t.Errorf("the origin got Private-Token %q and the query %q: the pod token must be removed, the rest kept", got.header.Get("Private-Token"), got.query)
		}
	})
}

// TestTheReverseProxyRefusesWhatNamesNoConnectorOrNoneTheCallerMayUse: no
// connector named, none of that name, another namespace's without RBAC, a
// missing or refused token — each answered with a reason, and the origin
// is never dialed.
func TestTheReverseProxyRefusesWhatNamesNoConnectorOrNoneTheCallerMayUse(t *testing.T) {
	e := startGateway(t, nil)
	nsA, nsB := namespace(t, "reverse-a"), namespace(t, "reverse-b")
	o := newOrigin(t)
	connectorWith(t, nsB, "theirs", o.URL, bearerSecret("their-secret"), o.caPEM(), "http://"+e.addr)
	tok, _ := cp.PodToken(t, nsA, "job", "default")
	hostOf := func(ns, name string) string { return "c-" + name + "." + ns + ".svc.cluster.local" }

	for _, tt := range []struct {
		name, host, path string
		header           http.Header
		want             int
		say              string
	}{
		{"a host and path that name no connector", "127.0.0.1", "/", bearer(string(tok)), 404, "no connector is named by this request"},
		{"a path prefix that is cut short", "127.0.0.1", "/namespaces/" + nsB + "/connectors", bearer(string(tok)), 404, "no connector is named"},
		{"a host of another shape", "c-theirs." + nsB + ".example.com", "/", bearer(string(tok)), 404, "no connector is named"},
		{"no token", hostOf(nsB, "theirs"), "/", nil, 401, "authentication required"},
		{"a Basic header without a password", hostOf(nsB, "theirs"), "/", http.Header{"Authorization": {basicAuth("user", "")}}, 401, "carries no token"},
		{"a token that is no token", hostOf(nsB, "theirs"), "/", bearer("not-a-token"), 401, "proxy token refused"},
		{"another namespace's connector without RBAC", hostOf(nsB, "theirs"), "/", bearer(string(tok)), 403, "may not get connector " + nsB + "/theirs"},
		{"the same by the path resolver", "127.0.0.1", "/namespaces/" + nsB + "/connectors/theirs/x", bearer(string(tok)), 403, "may not get connector " + nsB + "/theirs"},
		{"a connector that does not exist in the caller's namespace", hostOf(nsA, "nothing"), "/", bearer(string(tok)), 404, "connector " + nsA + "/nothing not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, h := reverseGet(t, e, tt.host, tt.path, tt.header)
			if status != tt.want || !strings.Contains(body, tt.say) {
				t.Errorf("got %d %q, want %d saying %q", status, body, tt.want, tt.say)
			}
			if status == 401 && h.Get("WWW-Authenticate") != `Basic realm="connectors"` {
				t.Errorf("a 401 without a Basic challenge: %q", h.Get("WWW-Authenticate"))
			}
			if strings.Contains(body, string(tok)) {
				t.Error("the answer quotes the token")
			}
		})
	}
	if n := o.count(); n != 0 {
		t.Errorf("the origin received %d requests; refusals must dial nothing", n)
	}

	t.Run("once granted, the same request goes through", func(t *testing.T) {
		grant(t, nsB, "theirs", nsA, "default")
		waitFor(t, "the grant", func() bool {
			status, _, _ := reverseGet(t, e, hostOf(nsB, "theirs"), "/", bearer(string(tok)))
			return status == http.StatusOK
		})
		if a := o.last(t).header.Get("Authorization"); a != "Bearer their-secret" {
			t.Errorf("the origin got Authorization %q", a)
		}
	})
}

// TestTheReverseProxyNeverSendsARequestElsewhereThanTheConnectorsAddress:
// a path that climbs out of the address's prefix or names another host in
// its first segment still goes to the connector's host only.
func TestTheReverseProxyNeverSendsARequestElsewhereThanTheConnectorsAddress(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "reverse-host")
	o := newOrigin(t)
	l, dialed := canary(t)
	connectorWith(t, ns, "repo", o.URL+"/base", bearerSecret("upstream-secret"), o.caPEM(), "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")
	for _, p := range []string{"//" + l.Addr().String() + "/x", "/namespaces/" + ns + "/connectors/repo/http://" + l.Addr().String() + "/"} {
		status, _, _ := reverseGet(t, e, "c-repo."+ns, p, bearer(string(tok)))
		if status >= 500 {
			t.Errorf("%s: got %d", p, status)
		}
	}
	// Dot segments would leave the address's path at the upstream (or a
	// front end that resolves them): refused before anything is sent.
	for _, p := range []string{"/../../" + l.Addr().String(), "/x/%2e%2e/%2E%2E/admin", "/namespaces/" + ns + "/connectors/repo/../other"} {
		if status, body, _ := reverseGet(t, e, "c-repo."+ns, p, bearer(string(tok))); status != 400 {
			t.Errorf("%s: got %d %q, want 400", p, status, body)
		}
	}
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	if n := dialed.Load(); n != 0 {
		t.Errorf("the gateway dialed the other host %d times", n)
	}
	if n := o.count(); n != 2 {
		t.Errorf("the origin got %d requests, want the 2", n)
	}
}
