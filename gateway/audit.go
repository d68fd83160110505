package gateway

import (
	"net/http"
	"time"
)

// auditRecord collects one audit line: who (from the verified token), which
// connector, what, and the outcome. It never holds the token.
type auditRecord struct {
	g        *Gateway
	kind     string
	target   string
	method   string
	path     string
	identity []any
}

func (g *Gateway) auditor(r *http.Request, kind, target string) *auditRecord {
	path := r.URL.Path
	if r.Method == http.MethodConnect {
		path = ""
	}
	return &auditRecord{g: g, kind: kind, target: target, method: r.Method, path: path}
}

func (a *auditRecord) session(s *session) {
	id := s.id
	a.identity = []any{
		"podNamespace", id.Namespace, "podName", id.PodName, "podUID", id.PodUID,
		"serviceAccount", id.ServiceAccountName,
	}
	connectors := make([]string, 0, len(s.refs))
	for _, r := range s.refs {
		connectors = append(connectors, r.String())
	}
	a.identity = append(a.identity, "connectors", connectors)
}

func (a *auditRecord) done(status int, bytes int64, d time.Duration, reason string) {
	kv := []any{"protocol", a.kind, "target", a.target, "method", a.method, "path", a.path,
		"status", status, "bytes", bytes, "durationMs", d.Milliseconds()}
	kv = append(kv, a.identity...)
	if reason != "" {
		kv = append(kv, "reason", reason)
	}
	a.g.opts.Logger.WithName("audit").Info("request", kv...)
}
