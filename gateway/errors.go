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
	e.headers(w.Header().Set)
	w.WriteHeader(e.status)
	_, _ = fmt.Fprintln(w, e.msg)
}

// headers sets the header fields of the answer to e (net/http and the
// HTTP/2 relay answer the same way).
func (e *proxyError) headers(set func(name, value string)) {
	if e.status == http.StatusProxyAuthRequired {
		set("Proxy-Authenticate", `Basic realm="connectors"`)
	}
	if e.status == http.StatusServiceUnavailable {
		set("Retry-After", "5")
	}
	set("Content-Type", "text/plain; charset=utf-8")
	set("X-Content-Type-Options", "nosniff")
}
