package gateway

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

// forwarder serves the requests of one tunnel (or one plain request).
type forwarder struct {
	g        *Gateway
	s        *session
	c        *connectorsv1alpha1.Connector
	scheme   string
	hostport string
	t        *tunnel // nil for plain requests
	protocol string
	trust    *trustMemo     // shared by the protocols of one tunnel
	ref      string         // the connector's ns/name, for the audit line
	reverse  *reverseTarget // set for reverse-proxied requests
}

func (g *Gateway) forwarder(s *session, c *connectorsv1alpha1.Connector, scheme, hostport string, t *tunnel) *forwarder {
	return &forwarder{g: g, s: s, c: c, scheme: scheme, hostport: hostport, t: t, trust: &trustMemo{}, ref: c.Namespace + "/" + c.Name}
}

func (f *forwarder) withProtocol(p string) http.Handler {
	cp := *f
	cp.protocol = p
	return &cp
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := f.g
	start := g.opts.Now()
	protocol := f.protocol
	if isUpgrade(r) {
		protocol = upgradeProtocol(r)
	}
	audit := g.auditor(r, protocol, f.hostport)
	audit.session(f.s)
	audit.connector = f.ref
	g.inFlight.add(1)
	defer g.inFlight.add(-1)
	g.metrics.streams.Inc()
	defer g.metrics.streams.Dec()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	reason := "" // why the gateway refused or failed the request, for the audit line
	refuse := func(w http.ResponseWriter, e *proxyError) {
		reason = e.msg
		writeProxyError(w, e)
	}
	defer func() {
		d := g.opts.Now().Sub(start)
		g.metrics.request(f.c, r.Method, rec.status, protocol, d)
		audit.done(rec.status, rec.written(), d, reason)
	}()

	releaseSlot, perror := g.acquireRequest(f.s)
	if perror != nil {
		g.metrics.limited.WithLabelValues("requests").Inc()
		refuse(rec, perror)
		return
	}
	defer releaseSlot()
	host := r.Host
	if f.reverse != nil {
		host = f.hostport // the connector's address, named by the request
	}
	adm, perror, after := f.admit(r.Context(), r.Method, host)
	if perror != nil {
		if after != keepTunnel {
			rec.Header().Set("Connection", "close")
		}
		if after == endTunnel {
			defer f.closeTunnel()
		}
		refuse(rec, perror)
		return
	}
	f, cred, roots, version := adm.f, adm.cred, adm.roots, adm.version
	var body *clientBody
	if !isUpgrade(r) {
		if body, perror = prefetchBody(r); perror != nil {
			rec.Header().Set("Connection", "close") // the request's framing is lost
			refuse(rec, perror)
			return
		}
	}
	if adm.gen != nil {
		if cred, perror = adm.gen.inject(r.Context(), g.policy, r, body != nil); perror != nil {
			refuse(rec, perror)
			return
		}
	}
	var rt http.RoundTripper = g.transports.get(string(f.c.UID)+"|"+version, roots)
	if adm.login != nil {
		if rt, perror = f.registryTransport(r, adm.login, rt, version); perror != nil {
			refuse(rec, perror)
			return
		}
	}
	watch, buffers := isWatch(r), g.buffers
	if watch {
		buffers = g.watchBuffers
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = f.scheme
			pr.Out.URL.Host = f.hostport
			pr.Out.Host = "" // from URL.Host: the target the tunnel was authorized for
			stripClientCredentials(pr.Out.Header)
			if f.reverse != nil {
				f.reverse.rewrite(pr.Out, f.s.token)
			}
			cred(pr.Out)
		},
		Transport: rt,
		// 0: httputil flushes every write of streaming responses (unknown
		// length: watch, logs -f; text/event-stream) and lets fixed-length
		// ones go out in one piece.
		FlushInterval: 0,
		BufferPool:    buffers,
		ErrorLog:      g.serverLog, // body copy errors, at V(1)
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			if berr := body.failed(); berr != nil {
				w.Header().Set("Connection", "close")
				refuse(w, malformedBody(berr))
				return
			}
			refuse(w, perr(http.StatusBadGateway, "upstream %s: %s", f.hostport, describeUpstreamError(err)))
		},
		ModifyResponse: func(resp *http.Response) error {
			g.metrics.firstByte.Observe(g.opts.Now().Sub(start).Seconds())
			if resp.StatusCode == http.StatusOK && watch {
				resp.Body = g.watches.track(resp.Body)
			}
			if f.reverse != nil {
				f.reverse.mapResponse(resp.Header)
			}
			if f.reverse != nil || adm.login != nil {
				// The upstream's challenge is not the client's to answer: a
				// registry client would send the proxy host's credential (the
				// pod token) to the challenge's realm.
				ownChallenge(resp)
			}
			return nil
		},
	}
	proxy.ServeHTTP(rec, r)
}

// registryTransport is the token-flow transport for the request (its path
// on the upstream: the reverse proxy's joined one, or the request's).
func (f *forwarder) registryTransport(r *http.Request, login *registryLogin, inner http.RoundTripper, version string) (http.RoundTripper, *proxyError) {
	path := r.URL.Path
	if f.reverse != nil {
		if p, err := url.PathUnescape(joinPath(f.reverse.basePath, f.reverse.rawPath)); err == nil {
			path = p
		}
	}
	u := &url.URL{Scheme: f.scheme, Host: f.hostport}
	ctx, cancel := context.WithTimeout(r.Context(), f.g.opts.UpstreamTimeout)
	defer cancel()
	scopes, err := registryScopes(r.Method, path, r.URL.Query())
	if err != nil {
		return nil, perr(http.StatusBadRequest, "%s", err.Error())
	}
	t, err := f.g.registries.transport(ctx, string(f.c.UID)+"|"+version, u, login, inner, scopes)
	if err != nil {
		return nil, perr(http.StatusBadGateway, "connector %s/%s: %s", f.c.Namespace, f.c.Name, err.Error())
	}
	return t, nil
}

// admission is what the checks of one request let through: the forwarder
// with the connector as it is now, the credential to inject and the
// upstream's trust.
type admission struct {
	f       *forwarder
	cred    func(*http.Request)
	gen     *generator     // instead of cred: a Rego generator, run per request
	login   *registryLogin // and a registry's token flow (registry.go)
	roots   *x509.CertPool
	version string
}

// afterRefusal says what a refusal does to the connection it came on.
type afterRefusal int

const (
	keepTunnel afterRefusal = iota // the next request may fare better
	closeConn                      // answer with Connection: close (HTTP/2: GOAWAY)
	endTunnel                      // and close the tunnel a second later
)

// admit runs the checks of every request in a tunnel (and of plain
// requests): no CONNECT inside, the host the
// tunnel was authorized for, the token still valid (a cache hit), the
// connector as it is now (existing, Ready, still allowed, still pointing
// here), its credential and the upstream's trust.
func (f *forwarder) admit(ctx context.Context, method, host string) (*admission, *proxyError, afterRefusal) {
	g := f.g
	// A draining gateway still serves what reaches it through an open
	// tunnel: an HTTP/1.1 request sent as the drain began (its answer
	// closes the connection) or an HTTP/2 stream opened before the GOAWAY.
	// New streams and tunnels are refused where they open.
	if method == http.MethodConnect {
		return nil, perr(http.StatusMethodNotAllowed, "CONNECT inside a tunnel is not forwarded"), keepTunnel
	}
	// The request must be for the host the tunnel was authorized for: the
	// Host header (HTTP/2 :authority) picks the virtual host upstream.
	if hostport := requestHostPort(host, f.scheme); hostport != f.hostport {
		return nil, perr(http.StatusMisdirectedRequest, "this tunnel is for %s, not %s", f.hostport, host), keepTunnel
	}
	// Re-validate on every request (a cache hit): a revoked token stops here.
	if _, err := g.opts.Validator.Validate(ctx, f.s.token); err != nil {
		if !tokens.IsInvalid(err) {
			return nil, perr(http.StatusServiceUnavailable, "cannot check the proxy token now: %s", err.Error()), keepTunnel
		}
		return nil, perr(http.StatusForbidden, "the proxy token is no longer valid: %s", err.Error()), endTunnel
	}
	// And the connector as it is now: deleted, re-pointed, not Ready or no
	// longer allowed ends the tunnel's use of it.
	c, perror := f.current(ctx)
	if perror != nil {
		if perror.status != http.StatusServiceUnavailable {
			return nil, perror, endTunnel
		}
		return nil, perror, keepTunnel
	}
	current := *f
	current.c = c
	f = &current
	cred, gen, login, err := f.credential(ctx)
	if err != nil {
		return nil, perr(http.StatusServiceUnavailable, "connector %s/%s: %s", f.c.Namespace, f.c.Name, err.Error()), keepTunnel
	}
	roots, version, err := f.upstreamTrust(ctx)
	if err != nil {
		return nil, perr(http.StatusBadGateway, "connector %s/%s: upstream trust: %s", f.c.Namespace, f.c.Name, err.Error()), keepTunnel
	}
	return &admission{f: f, cred: cred, gen: gen, login: login, roots: roots, version: version}, nil, keepTunnel
}

// closeTunnel ends the tunnel. The answer carries "Connection: close",
// on which both servers close the connection after it (HTTP/2: a GOAWAY);
// a second later the tunnel is closed whatever still runs in it.
func (f *forwarder) closeTunnel() {
	if f.t != nil {
		time.AfterFunc(tunnelCloseLinger, f.t.close)
	}
}

const tunnelCloseLinger = time.Second

// servePlain forwards an absolute-URI request to a plain-HTTP target.
func (g *Gateway) servePlain(w http.ResponseWriter, r *http.Request) {
	start := g.opts.Now()
	hostport := canonicalHostPort(r.URL)
	audit := g.auditor(r, "http", hostport)
	s, perror := g.authenticate(r.Context(), r)
	if perror == nil {
		audit.session(s)
		var c *connectorsv1alpha1.Connector
		c, perror = g.route(r.Context(), s, "http", hostport)
		if perror == nil {
			r.Header.Del("Proxy-Authorization")
			g.forwarder(s, c, "http", hostport, nil).withProtocol("http").ServeHTTP(w, r)
			return
		}
	}
	writeProxyError(w, perror)
	audit.done(perror.status, 0, g.opts.Now().Sub(start), perror.msg)
}
