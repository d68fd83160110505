package gateway

import (
	"net/http"
	"time"
)

// auditRecord collects one audit line: who (from the verified token), which
// connector, what, and the outcome. It never holds the token.
type auditRecord struct {
	g         *Gateway
	kind      string
	target    string
	method    string
	path      string
	connector string // the one used: ns/name, once routed
	identity  []any
}

func (g *Gateway) auditor(r *http.Request, kind, target string) *auditRecord {
	path := r.URL.Path
	if r.Method == http.MethodConnect {
		path = ""
	}
	return &auditRecord{g: g, kind: kind, target: target, method: r.Method, path: path}
}

func (a *auditRecord) session(s *session) { a.identity = s.audit }

func (a *auditRecord) done(status int, bytes int64, d time.Duration, reason string) {
	kv := make([]any, 0, 16+len(a.identity))
	kv = append(kv, "protocol", a.kind, "target", a.target, "method", a.method, "path", a.path,
		"status", status, "bytes", bytes, "durationMs", d.Milliseconds())
	if a.connector != "" {
		kv = append(kv, "connector", a.connector)
	}
	kv = append(kv, a.identity...)
	if reason != "" {
		kv = append(kv, "reason", reason)
	}
	a.g.auditLog.Info("request", kv...)
}
