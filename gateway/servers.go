package gateway

import (
	"crypto/tls"
	"errors"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"

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

// newServerLog is the ErrorLog of the gateway's HTTP servers. net/http and
// x/net/http2 write there the handler panics they recover, logged as
// errors with their stack (the panic values are the gateway's own, never
// request data), and what single clients do wrong (TLS handshake or
// preface errors, broken connections), which any client can cause at will
// and is logged at V(1) only.
func newServerLog(logger logr.Logger) *log.Logger {
	return log.New(serverLogWriter{logger}, "", 0)
}

type serverLogWriter struct{ log logr.Logger }

// Write takes one line of net/http (log.Logger writes each at once).
func (w serverLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	switch {
	case strings.HasPrefix(line, "http: panic serving "), strings.HasPrefix(line, "http2: panic serving "):
		msg, stack, _ := strings.Cut(line, "\n")
		w.log.Error(errors.New(msg), "recovered a panic of a handler", "stack", stack)
	case strings.HasPrefix(line, "http: Accept error"):
		w.log.Info("cannot accept a connection, retrying", "error", line) // the process's trouble (file descriptors), not a client's
	default:
		w.log.V(1).Info("HTTP server error", "error", line)
	}
	return len(p), nil
}
