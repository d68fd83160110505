package httplog

import (
	"errors"
	"log"
	"strings"

	"github.com/go-logr/logr"
)

// ErrorLog returns the ErrorLog for an HTTP server. net/http and
// x/net/http2 write there the handler panics they recover, logged as
// errors with their stack (the panic values are the program's own, never
// request data), the server's accept errors (the process's trouble, at
// V(0)) and what single clients do wrong (TLS handshake or preface errors,
// broken connections, a reverse proxy's copy errors), which any client can
// cause at will and is logged at V(1) only.
func ErrorLog(logger logr.Logger) *log.Logger {
	return log.New(writer{logger}, "", 0)
}

type writer struct{ log logr.Logger }

// Write takes one line (log.Logger writes each at once).
func (w writer) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	switch {
	case strings.HasPrefix(line, "http: panic serving "), strings.HasPrefix(line, "http2: panic serving "):
		msg, stack, _ := strings.Cut(line, "\n")
		w.log.Error(errors.New(msg), "recovered a panic of a handler", "stack", stack)
	case strings.HasPrefix(line, "http: Accept error"):
		w.log.Info("cannot accept a connection, retrying", "error", line)
	default:
		w.log.V(1).Info("HTTP server error", "error", line)
	}
	return len(p), nil
}
