package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/connectors-io/connectors/internal/tlsconfig"
)

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

// transportCache keeps the upstream transports of each trust configuration.
type transportCache struct {
	cache   *lru.Cache[string, *upstream]
	timeout time.Duration
}

// upstream is a pair of transports: pooled HTTP/2 for ordinary requests, and
// HTTP/1.1-only for Upgrade requests (Go forces HTTP/1.1 only for
// "Upgrade: websocket", not for SPDY/3.1).
type upstream struct {
	h2, h1   *http.Transport
	sessions tls.ClientSessionCache // TLS resumption for the HTTP/2 relay's connections
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
			TLSClientConfig:       tlsconfig.Modern(&tls.Config{RootCAs: roots, NextProtos: protos}),
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
	u := &upstream{h2: h2, h1: h1, sessions: tls.NewLRUClientSessionCache(64)}
	tc.cache.Add(key, u)
	return u
}

// WatchBufferSize is the copy buffer of a watch's response. A watch holds
// its buffer while it waits for the next event, for as long as it runs; its
// events are small and each is flushed as it comes, so a small buffer costs
// a watch nothing but saves the difference to BufferSize per open watch.
const WatchBufferSize = 4 << 10

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
