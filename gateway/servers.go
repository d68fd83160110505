package gateway

import (
	"crypto/tls"
	"log"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/connectors-io/connectors/internal/httplog"
	"github.com/connectors-io/connectors/internal/tlsconfig"
)

// readHeaderTimeout bounds how long a client may take to send the headers
// of a request on the proxy listener and inside an HTTP/1.1 tunnel.
const readHeaderTimeout = 30 * time.Second

// proxyServer serves the proxy listener (CONNECT, plain requests).
func (g *Gateway) proxyServer() *http.Server {
	return &http.Server{
		Handler:           g,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       g.opts.IdleTimeout, // keep-alive proxy connections (plain requests, answers to refused CONNECTs)
		MaxHeaderBytes:    g.opts.MaxHeaderBytes,
		ErrorLog:          g.serverLog,
	}
}

// adminServer serves /healthz, /readyz and /metrics (the kubelet,
// Prometheus: small headers, short requests).
func (g *Gateway) adminServer() *http.Server {
	return &http.Server{
		Handler:           g.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          g.serverLog,
	}
}

// tunnelServer serves the requests of one HTTP/1.1 tunnel with h.
func (g *Gateway) tunnelServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       g.opts.IdleTimeout,
		MaxHeaderBytes:    g.opts.MaxHeaderBytes,
		ErrorLog:          g.serverLog,
	}
}

// h2BaseServer is the BaseConfig of the HTTP/2 tunnels. x/net/http2 takes
// its MaxHeaderBytes (the header list cap), IdleTimeout and ErrorLog; it
// has no header timeout to take: a client must send its preface within
// 10 s, and a connection without open streams is closed after IdleTimeout.
// It never serves a listener itself.
func (g *Gateway) h2BaseServer() *http.Server {
	return &http.Server{MaxHeaderBytes: g.opts.MaxHeaderBytes, IdleTimeout: g.opts.IdleTimeout, ErrorLog: g.serverLog}
}

// tunnelTLS is the server side of a tunnel's TLS, with leaf: TLS 1.2 or
// later with modern suites only (package tlsconfig).
func tunnelTLS(leaf *tls.Certificate) *tls.Config {
	return tlsconfig.Modern(&tls.Config{
		Certificates: []tls.Certificate{*leaf},
		NextProtos:   []string{"h2", "http/1.1"},
	})
}

// newServerLog is the ErrorLog of the gateway's HTTP servers and its
// reverse proxy (package httplog): recovered panics as errors, what single
// clients do wrong at V(1).
func newServerLog(logger logr.Logger) *log.Logger { return httplog.ErrorLog(logger) }
