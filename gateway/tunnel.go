package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

// maxStreamsPerTunnel bounds the concurrent HTTP/2 streams of one tunnel.
const maxStreamsPerTunnel = 100

// tunnel is one CONNECT: a client connection with TLS terminated by the
// gateway and the connector it was authorized for.
type tunnel struct {
	conn      net.Conn
	closeOnce sync.Once
	drain     func() // an HTTP/1.1 tunnel's: close when idle; set under Gateway.mu
}

func (t *tunnel) close() { t.closeOnce.Do(func() { _ = t.conn.Close() }) }

func (g *Gateway) serveConnect(w http.ResponseWriter, r *http.Request) {
	start := g.opts.Now()
	ctx := r.Context()
	hostport := r.Host
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "443")
	}
	audit := g.auditor(r, "connect", hostport)
	s, perror := g.authenticate(ctx, r)
	if perror == nil {
		audit.session(s)
		var c *connectorsv1alpha1.Connector
		c, perror = g.route(ctx, s, "https", hostport)
		if perror == nil {
			audit.connector = c.Namespace + "/" + c.Name
			g.tunnel(w, r, s, c, hostport, audit, start)
			return
		}
	}
	writeProxyError(w, perror)
	audit.done(perror.status, 0, g.opts.Now().Sub(start), perror.msg)
}

// tunnel hijacks the client connection, terminates TLS with a leaf for the
// host and serves the requests inside until the token expires, the tunnel
// idles out, or the gateway shuts down.
func (g *Gateway) tunnel(w http.ResponseWriter, r *http.Request, s *session, c *connectorsv1alpha1.Connector, hostport string, audit *auditRecord, start time.Time) {
	key := tunnelKeys{connector: c.Namespace + "/" + c.Name, pod: s.podKey(), namespace: s.id.Namespace}
	if g.draining.Load() {
		writeProxyError(w, perr(http.StatusServiceUnavailable, "the gateway is shutting down: connect again"))
		audit.done(http.StatusServiceUnavailable, 0, g.opts.Now().Sub(start), "shutting down")
		return
	}
	if perror := g.acquire(key); perror != nil {
		g.metrics.limited.WithLabelValues("tunnels").Inc()
		writeProxyError(w, perror)
		audit.done(perror.status, 0, g.opts.Now().Sub(start), perror.msg)
		return
	}
	host, _, _ := net.SplitHostPort(hostport)
	leaf, err := g.leaves.get(host)
	if err != nil {
		g.release(key)
		writeProxyError(w, perr(http.StatusInternalServerError, "cannot mint a certificate for %s", host))
		audit.done(http.StatusInternalServerError, 0, g.opts.Now().Sub(start), err.Error())
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		g.release(key)
		writeProxyError(w, perr(http.StatusInternalServerError, "the proxy connection cannot be taken over"))
		audit.done(http.StatusInternalServerError, 0, g.opts.Now().Sub(start), "no hijacker")
		return
	}
	raw, brw, err := hj.Hijack()
	if err != nil {
		g.release(key)
		audit.done(http.StatusInternalServerError, 0, g.opts.Now().Sub(start), "hijack: "+err.Error())
		return
	}
	conn := &bufferedConn{Conn: raw, r: brw.Reader}
	if _, err := raw.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		g.release(key)
		_ = raw.Close()
		audit.done(http.StatusOK, 0, g.opts.Now().Sub(start), "client gone: "+err.Error())
		return
	}
	audit.done(http.StatusOK, 0, g.opts.Now().Sub(start), "")
	// The tunnel outlives this handler: returning lets net/http free the
	// proxy connection's request state while the tunnel idles.
	g.running.add(1)
	go g.serveTunnel(context.WithoutCancel(r.Context()), raw, conn, leaf, s, c, hostport, key)
}

// serveTunnel terminates TLS on a hijacked connection and serves the
// requests inside; it owns the connector's tunnel slot.
func (g *Gateway) serveTunnel(ctx context.Context, raw net.Conn, conn net.Conn, leaf *tls.Certificate, s *session, c *connectorsv1alpha1.Connector, hostport string, key tunnelKeys) {
	defer g.running.add(-1)
	defer g.release(key)
	t := &tunnel{conn: raw}
	if !g.register(t) {
		t.close()
		return
	}
	defer g.unregister(t)
	defer t.close()
	g.metrics.tunnels.Inc()
	defer g.metrics.tunnels.Dec()

	// The tunnel lives no longer than its token (plus a grace).
	life := s.id.ExpiresAt.Add(g.opts.TokenGrace).Sub(g.opts.Now())
	timer := time.AfterFunc(life, t.close)
	defer timer.Stop()
	defer g.recheckToken(ctx, t, s)()

	tlsConn := tls.Server(conn, tunnelTLS(leaf))
	hsCtx, cancel := context.WithTimeout(ctx, g.opts.HandshakeTimeout)
	hsStart := g.opts.Now()
	err := tlsConn.HandshakeContext(hsCtx)
	cancel()
	if err != nil {
		g.metrics.handshakes.WithLabelValues("error").Observe(g.opts.Now().Sub(hsStart).Seconds())
		return
	}
	g.metrics.handshakes.WithLabelValues("ok").Observe(g.opts.Now().Sub(hsStart).Seconds())

	if g.draining.Load() {
		return // too late for a GOAWAY: closed before its first request, the client goes elsewhere
	}
	fw := g.forwarder(s, c, "https", hostport, t)
	if tlsConn.ConnectionState().NegotiatedProtocol == "h2" {
		if up, version := g.dialRelay(ctx, fw); up != nil {
			g.serveRelay(ctx, t, tlsConn, up, version, fw)
			return
		}
		// Shared by all HTTP/2 tunnels: shutting its BaseConfig down sends
		// every one of them a GOAWAY.
		g.h2.ServeConn(tlsConn, &http2.ServeConnOpts{Context: ctx, Handler: fw.withProtocol("h2"), BaseConfig: g.h2base})
		return
	}
	inner := g.tunnelServer(fw.withProtocol("h1"))
	// Draining closes the connection when idle, or after the current answer.
	g.setDrain(t, func() { inner.SetKeepAlivesEnabled(false) })
	_ = inner.Serve(newOneConnListener(tlsConn))
}

// tokenRecheck is how often an open tunnel's token is checked again (a
// cache hit), so that streams running in it end soon after the token is
// revoked (its pod deleted), not only the next request.
const tokenRecheck = time.Second

// recheckToken closes t once its token is no longer valid, checking every
// tokenRecheck with a timer (no goroutine per idle tunnel); it returns the
// function that stops the checks. A token that cannot be checked right now
// leaves the tunnel open.
func (g *Gateway) recheckToken(ctx context.Context, t *tunnel, s *session) (stop func()) {
	var mu sync.Mutex
	var timer *time.Timer
	stopped := false
	var check func()
	check = func() {
		if !g.opts.Now().Before(s.id.ExpiresAt) {
			return // expired: the lifetime timer closes the tunnel after the grace
		}
		checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := g.opts.Validator.Validate(checkCtx, s.token)
		cancel()
		if tokens.IsInvalid(err) {
			t.close()
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timer = time.AfterFunc(tokenRecheck, check)
		}
	}
	mu.Lock()
	timer = time.AfterFunc(tokenRecheck, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		timer.Stop()
	}
}

// setDrain records how to drain an HTTP/1.1 tunnel, at once if the gateway
// already drains.
func (g *Gateway) setDrain(t *tunnel, drain func()) {
	g.mu.Lock()
	t.drain = drain
	draining := g.draining.Load()
	g.mu.Unlock()
	if draining {
		drain()
	}
}

// drainTunnels asks every tunnel to close once idle: a GOAWAY to the
// HTTP/2 ones, keep-alives off for the HTTP/1.1 ones. Clients then open new
// connections, to another replica.
func (g *Gateway) drainTunnels(ctx context.Context) {
	g.mu.Lock()
	var drains []func()
	for t := range g.open {
		if t.drain != nil {
			drains = append(drains, t.drain)
		}
	}
	g.mu.Unlock()
	for _, d := range drains {
		d()
	}
	go func() { _ = g.h2base.Shutdown(ctx) }() // runs the GOAWAY hooks; it tracks no connection itself
}

func (g *Gateway) register(t *tunnel) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining.Load() {
		return false
	}
	g.open[t] = struct{}{}
	return true
}

func (g *Gateway) unregister(t *tunnel) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.open, t)
}

// closeTunnels closes every open tunnel (the end of a graceful shutdown).
func (g *Gateway) closeTunnels() {
	g.mu.Lock()
	open := make([]*tunnel, 0, len(g.open))
	for t := range g.open {
		open = append(open, t)
	}
	g.mu.Unlock()
	for _, t := range open {
		t.close()
	}
}

// bufferedConn reads first what the proxy server had buffered: a client may
// send its TLS ClientHello right behind the CONNECT request.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil // drained: let its 4 KiB buffer go (tunnels idle for long)
	}
	return c.Conn.Read(p)
}

// oneConnListener hands one connection to an http.Server, then blocks until
// that connection is closed, so that Serve returns with it.
type oneConnListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	taken  bool
	mu     sync.Mutex
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{closed: make(chan struct{})}
	l.conn = &notifyConn{Conn: c, onClose: func() { l.once.Do(func() { close(l.closed) }) }}
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if !l.taken {
		l.taken = true
		l.mu.Unlock()
		return l.conn, nil
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

type notifyConn struct {
	net.Conn
	onClose func()
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.onClose()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
