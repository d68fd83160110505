package gateway

import (
	"fmt"
	"net/http"
	"strings"
)

// proxyError is an answer to a proxy client: status and one-line reason.
type proxyError struct {
	status int
	msg    string
}

func (e *proxyError) Error() string { return e.msg }

func perr(status int, format string, args ...any) *proxyError {
	return &proxyError{status: status, msg: oneLine.Replace(fmt.Sprintf(format, args...))}
}

// oneLine keeps messages (a condition's, an upstream error's) on one line.
var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

func writeProxyError(w http.ResponseWriter, e *proxyError) {
	if e.status == http.StatusProxyAuthRequired {
		w.Header().Set("Proxy-Authenticate", `Basic realm="connectors"`)
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	_, _ = fmt.Fprintln(w, e.msg)
}
