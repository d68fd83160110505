package gateway

import (
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"time"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

var discardLog = log.New(io.Discard, "", 0)

// forwarder serves the requests of one tunnel (or one plain request).
type forwarder struct {
	g        *Gateway
	s        *session
	c        *connectorsv1alpha1.Connector
	scheme   string
	hostport string
	t        *tunnel // nil for plain requests
	protocol string
	trust    *trustMemo // shared by the protocols of one tunnel
	ref      string     // the connector's ns/name, for the audit line
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

	if g.draining.Load() {
		rec.Header().Set("Connection", "close")
		refuse(rec, perr(http.StatusServiceUnavailable, "the gateway is shutting down: connect again"))
		return
	}
	if r.Method == http.MethodConnect {
		refuse(rec, perr(http.StatusMethodNotAllowed, "CONNECT inside a tunnel is not forwarded"))
		return
	}
	// The request must be for the host the tunnel was authorized for: the
	// Host header (HTTP/2 :authority) picks the virtual host upstream.
	if hostport := requestHostPort(r.Host, f.scheme); hostport != f.hostport {
		refuse(rec, perr(http.StatusMisdirectedRequest, "this tunnel is for %s, not %s", f.hostport, r.Host))
		return
	}
	// Re-validate on every request (a cache hit): a revoked token stops here.
	if _, err := g.opts.Validator.Validate(r.Context(), f.s.token); err != nil {
		if !tokens.IsInvalid(err) {
			refuse(rec, perr(http.StatusServiceUnavailable, "cannot check the proxy token now: %s", err.Error()))
			return
		}
		rec.Header().Set("Connection", "close")
		refuse(rec, perr(http.StatusForbidden, "the proxy token is no longer valid: %s", err.Error()))
		f.closeTunnel()
		return
	}
	// And the connector as it is now: deleted, re-pointed, not Ready or no
	// longer allowed ends the tunnel's use of it.
	c, perror := f.current(r.Context())
	if perror != nil {
		if perror.status != http.StatusServiceUnavailable {
			rec.Header().Set("Connection", "close")
			defer f.closeTunnel()
		}
		refuse(rec, perror)
		return
	}
	current := *f
	current.c = c
	f = &current
	cred, err := f.credential(r.Context())
	if err != nil {
		refuse(rec, perr(http.StatusServiceUnavailable, "connector %s/%s: %s", f.c.Namespace, f.c.Name, err.Error()))
		return
	}
	roots, version, err := f.upstreamTrust(r.Context())
	if err != nil {
		refuse(rec, perr(http.StatusBadGateway, "connector %s/%s: upstream trust: %s", f.c.Namespace, f.c.Name, err.Error()))
		return
	}
	rt := g.transports.get(string(f.c.UID)+"|"+version, roots)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = f.scheme
			pr.Out.URL.Host = f.hostport
			pr.Out.Host = "" // from URL.Host: the target the tunnel was authorized for
			stripClientCredentials(pr.Out.Header)
			cred(pr.Out)
		},
		Transport: rt,
		// 0: httputil flushes every write of streaming responses (unknown
		// length: watch, logs -f; text/event-stream) and lets fixed-length
		// ones go out in one piece.
		FlushInterval: 0,
		BufferPool:    g.buffers,
		ErrorLog:      discardLog,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			refuse(w, perr(http.StatusBadGateway, "upstream %s: %s", f.hostport, describeUpstreamError(err)))
		},
		ModifyResponse: func(*http.Response) error {
			g.metrics.firstByte.Observe(g.opts.Now().Sub(start).Seconds())
			return nil
		},
	}
	proxy.ServeHTTP(rec, r)
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
