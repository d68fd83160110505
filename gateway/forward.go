package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

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

// trustMemo keeps a tunnel's upstream trust for a second: the lookup lists
// the labelled CA Secrets, and a CA change may take that long to apply to
// open tunnels (credentials are still read on every request).
type trustMemo struct {
	mu      sync.Mutex
	pool    *x509.CertPool
	version string
	at      time.Time
}

const trustMemoTTL = time.Second

func (f *forwarder) upstreamTrust(ctx context.Context) (*x509.CertPool, string, error) {
	m := f.trust
	now := f.g.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pool != nil && now.Sub(m.at) < trustMemoTTL {
		return m.pool, m.version, nil
	}
	pool, version, err := f.g.state.trust(ctx, f.c)
	if err != nil {
		return nil, "", err
	}
	m.pool, m.version, m.at = pool, version, now
	return pool, version, nil
}

func (g *Gateway) forwarder(s *session, c *connectorsv1alpha1.Connector, scheme, hostport string, t *tunnel) *forwarder {
	return &forwarder{g: g, s: s, c: c, scheme: scheme, hostport: hostport, t: t, trust: &trustMemo{}, ref: c.Namespace + "/" + c.Name}
}

func (f *forwarder) withProtocol(p string) http.Handler {
	cp := *f
	cp.protocol = p
	return &cp
}

// clientCredentialHeaders are removed from client requests besides what
// httputil.ReverseProxy removes itself.
var clientCredentialHeaders = []string{"Authorization", "Proxy-Authorization"}

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
	g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	g.metrics.streams.Inc()
	defer g.metrics.streams.Dec()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		d := g.opts.Now().Sub(start)
		g.metrics.request(f.c, r.Method, rec.status, protocol, d)
		audit.done(rec.status, rec.written(), d, "")
	}()

	if g.draining.Load() {
		rec.Header().Set("Connection", "close")
		writeProxyError(rec, perr(http.StatusServiceUnavailable, "the gateway is shutting down: connect again"))
		return
	}
	if r.Method == http.MethodConnect {
		writeProxyError(rec, perr(http.StatusMethodNotAllowed, "CONNECT inside a tunnel is not forwarded"))
		return
	}
	// The request must be for the host the tunnel was authorized for: the
	// Host header (HTTP/2 :authority) picks the virtual host upstream.
	if hostport := requestHostPort(r.Host, f.scheme); hostport != f.hostport {
		writeProxyError(rec, perr(http.StatusMisdirectedRequest, "this tunnel is for %s, not %s", f.hostport, r.Host))
		return
	}
	// Re-validate on every request (a cache hit): a revoked token stops here.
	if _, err := g.opts.Validator.Validate(r.Context(), f.s.token); err != nil {
		if !tokens.IsInvalid(err) {
			writeProxyError(rec, perr(http.StatusServiceUnavailable, "cannot check the proxy token now: %s", err.Error()))
			return
		}
		rec.Header().Set("Connection", "close")
		writeProxyError(rec, perr(http.StatusForbidden, "the proxy token is no longer valid: %s", err.Error()))
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
		writeProxyError(rec, perror)
		return
	}
	f = &forwarder{g: f.g, s: f.s, c: c, scheme: f.scheme, hostport: f.hostport, t: f.t, protocol: f.protocol, trust: f.trust, ref: f.ref}
	cred, err := f.credential(r.Context())
	if err != nil {
		writeProxyError(rec, perr(http.StatusServiceUnavailable, "connector %s/%s: %s", f.c.Namespace, f.c.Name, err.Error()))
		return
	}
	roots, version, err := f.upstreamTrust(r.Context())
	if err != nil {
		writeProxyError(rec, perr(http.StatusBadGateway, "connector %s/%s: upstream trust: %s", f.c.Namespace, f.c.Name, err.Error()))
		return
	}
	rt := g.transports.get(string(f.c.UID)+"|"+version, roots)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = f.scheme
			pr.Out.URL.Host = f.hostport
			pr.Out.Host = "" // from URL.Host: the target the tunnel was authorized for
			for _, h := range clientCredentialHeaders {
				pr.Out.Header.Del(h)
			}
			for k := range pr.Out.Header {
				if strings.HasPrefix(strings.ToLower(k), "impersonate-") {
					pr.Out.Header.Del(k)
				}
			}
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
			writeProxyError(w, perr(http.StatusBadGateway, "upstream %s: %s", f.hostport, describeUpstreamError(err)))
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

// current re-reads the connector and checks that it is still the one the
// tunnel was opened for, still targets the host, is Ready and may still be
// used by the identity (the authorizer caches its answers).
func (f *forwarder) current(ctx context.Context) (*connectorsv1alpha1.Connector, *proxyError) {
	ref := connectorRef{namespace: f.c.Namespace, name: f.c.Name}
	c, err := f.g.state.connector(ctx, ref.namespace, ref.name)
	switch {
	case apierrors.IsNotFound(err) || (err == nil && c.UID != f.c.UID):
		return nil, perr(http.StatusNotFound, "connector %s no longer exists", ref)
	case err != nil:
		return nil, perr(http.StatusServiceUnavailable, "cannot read connector %s now", ref)
	case !targets(c, f.scheme, f.hostport):
		return nil, perr(http.StatusForbidden, "%s is no longer an address of connector %s", f.hostport, ref)
	}
	if perror := notReady(c, ref); perror != nil {
		return nil, perror
	}
	if err := f.g.opts.Authorizer.Authorize(ctx, f.s.id, ref.namespace, ref.name); err != nil {
		if errors.Is(err, tokens.ErrForbidden) {
			return nil, perr(http.StatusForbidden, "%s", err.Error())
		}
		return nil, perr(http.StatusServiceUnavailable, "cannot authorize now: %s", err.Error())
	}
	return c, nil
}

// requestHostPort normalizes a Host header to host:port.
func requestHostPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return strings.ToLower(host)
	}
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	return strings.ToLower(net.JoinHostPort(strings.Trim(host, "[]"), port))
}

// credential returns the function that injects the connector's credential,
// read afresh (a rotated Secret applies to the next request).
func (f *forwarder) credential(ctx context.Context) (func(*http.Request), error) {
	ref := f.c.Spec.Auth.SecretRef
	if ref == nil {
		return func(*http.Request) {}, nil
	}
	sec, err := f.g.state.secret(ctx, f.c.Namespace, ref.Name)
	if err != nil {
		return nil, errors.New("its Secret cannot be read")
	}
	switch sec.Type {
	case connectorsv1alpha1.SecretTypeBearerToken:
		token := strings.TrimSpace(string(sec.Data[connectorsv1alpha1.BearerTokenKey]))
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, nil
	case corev1.SecretTypeBasicAuth:
		user, pass := string(sec.Data[corev1.BasicAuthUsernameKey]), string(sec.Data[corev1.BasicAuthPasswordKey])
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }, nil
	default:
		return nil, fmt.Errorf("its Secret type %s has no injection rule", sec.Type)
	}
}

func isUpgrade(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

func upgradeProtocol(r *http.Request) string {
	u := strings.ToLower(r.Header.Get("Upgrade"))
	switch {
	case strings.HasPrefix(u, "websocket"):
		return "ws"
	case strings.HasPrefix(u, "spdy"):
		return "spdy"
	default:
		return "upgrade"
	}
}

// describeUpstreamError names what failed upstream.
func describeUpstreamError(err error) string {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		return "its TLS certificate is signed by an unknown authority (trust its CA with the connector's caCertSecretRef or a labelled CA Secret)"
	case errors.As(err, &hostname):
		return "its TLS certificate is not valid for this host: " + hostname.Error()
	case errors.As(err, &invalid):
		return "its TLS certificate is invalid: " + invalid.Error()
	case errors.As(err, &verify):
		return "its TLS certificate does not verify: " + verify.Err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	default:
		var op *net.OpError
		if errors.As(err, &op) {
			return "cannot connect: " + op.Err.Error()
		}
		return err.Error()
	}
}

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

// transportCache keeps the upstream transports of each trust configuration.
type transportCache struct {
	cache   *lru.Cache[string, *upstream]
	timeout time.Duration
}

// upstream is a pair of transports: pooled HTTP/2 for ordinary requests, and
// HTTP/1.1-only for Upgrade requests (Go forces HTTP/1.1 only for
// "Upgrade: websocket", not for SPDY/3.1).
type upstream struct {
	h2, h1 *http.Transport
}

func (u *upstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if isUpgrade(r) {
		return u.h1.RoundTrip(r)
	}
	return u.h2.RoundTrip(r)
}

func newTransportCache(size int, timeout time.Duration) *transportCache {
	c, _ := lru.NewWithEvict(size, func(_ string, u *upstream) {
		u.h2.CloseIdleConnections()
		u.h1.CloseIdleConnections()
	})
	return &transportCache{cache: c, timeout: timeout}
}

func (tc *transportCache) get(key string, roots *x509.CertPool) *upstream {
	if u, ok := tc.cache.Get(key); ok {
		return u
	}
	dialer := &net.Dialer{Timeout: tc.timeout, KeepAlive: 30 * time.Second}
	base := func(protos []string) *http.Transport {
		return &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: protos},
			TLSHandshakeTimeout:   tc.timeout,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	h2 := base([]string{"h2", "http/1.1"})
	h2.ForceAttemptHTTP2 = true
	h1 := base([]string{"http/1.1"})
	h1.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // never h2
	u := &upstream{h2: h2, h1: h1}
	tc.cache.Add(key, u)
	return u
}

// bufferPool is httputil.BufferPool over sync.Pool.
type bufferPool struct {
	size int
	pool sync.Pool
}

func newBufferPool(size int) *bufferPool {
	return &bufferPool{size: size, pool: sync.Pool{New: func() any { b := make([]byte, size); return &b }}}
}

func (p *bufferPool) Get() []byte { return *p.pool.Get().(*[]byte) }

func (p *bufferPool) Put(b []byte) {
	if cap(b) == p.size {
		b = b[:p.size]
		p.pool.Put(&b)
	}
}

// statusRecorder notes the status and bytes of a response and passes
// Flush and Hijack through (streaming, upgrades).
type statusRecorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	wrote    bool
	hijacked atomic.Int64 // bytes written to the client after an upgrade
}

func (s *statusRecorder) WriteHeader(code int) {
	// Informational answers (100 Continue, 103 Early Hints) come before the
	// final status; 101 is final for an upgrade.
	if !s.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack passes the connection of an upgraded stream to
// httputil.ReverseProxy, which hijacks only to relay a 101 Switching
// Protocols response (it writes that response itself, never through
// WriteHeader), and counts the bytes relayed to the client.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !s.wrote {
		s.status, s.wrote = http.StatusSwitchingProtocols, true
	}
	return &countingConn{Conn: conn, n: &s.hijacked}, brw, nil
}

// written is the number of body bytes sent to the client.
func (s *statusRecorder) written() int64 { return s.bytes + s.hijacked.Load() }

// countingConn counts the bytes written to a hijacked connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}
