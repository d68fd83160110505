package gateway

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

// The reverse proxy serves origin-form requests ("GET /repo.git/info/refs")
// sent to a connector's proxy URL instead of through the forward proxy:
// git, pip and registries that take a base URL. The connector comes from the
// request, the pod token from its Authorization header (or the class's
// authExtractor), and the request goes to the connector's spec.address with
// the connector's credential, through the same forwarder as a tunnel's.

const reverseHelp = "send the token of your pod as the password of Authorization: Basic (any user name) or as Authorization: Bearer"

// pathResolverPrefix begins the path of a path-resolver proxy URL:
// /namespaces/<namespace>/connectors/<name>.
const pathResolverPrefix = "/namespaces/"

// reverseRef names the connector an origin-form request is for and the
// path to forward: the Host c-<name>.<namespace>[.svc[.<cluster domain>]]
// (host resolver) or the path prefix /namespaces/<namespace>/connectors/<name>
// (path resolver), which is stripped. A Host that names a connector wins; a
// path prefix that names the same connector is stripped too (the original's
// docs show both forms in one URL). rawPath is the escaped path to forward.
func reverseRef(host string, u *url.URL) (ref connectorsv1alpha1.ConnectorRef, rawPath string, ok bool) {
	rawPath = u.EscapedPath()
	byHost, hostOK := hostRef(host)
	byPath, rest, pathOK := pathRef(rawPath)
	switch {
	case hostOK && pathOK && byPath == byHost:
		return byHost, rest, true
	case hostOK:
		return byHost, rawPath, true
	case pathOK:
		return byPath, rest, true
	}
	return connectorsv1alpha1.ConnectorRef{}, "", false
}

// hostRef reads c-<name>.<namespace>[.svc[.…]] from a Host header.
func hostRef(host string) (connectorsv1alpha1.ConnectorRef, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	labels := strings.Split(strings.ToLower(strings.TrimSuffix(host, ".")), ".")
	if len(labels) < 2 || !strings.HasPrefix(labels[0], "c-") || (len(labels) > 2 && labels[2] != "svc") {
		return connectorsv1alpha1.ConnectorRef{}, false
	}
	ref := connectorsv1alpha1.ConnectorRef{Namespace: labels[1], Name: strings.TrimPrefix(labels[0], "c-")}
	return ref, ref.Valid()
}

// pathRef reads /namespaces/<namespace>/connectors/<name>[/rest] from an
// escaped path and returns the rest ("/" when empty).
func pathRef(rawPath string) (connectorsv1alpha1.ConnectorRef, string, bool) {
	if !strings.HasPrefix(rawPath, pathResolverPrefix) {
		return connectorsv1alpha1.ConnectorRef{}, "", false
	}
	parts := strings.SplitN(strings.TrimPrefix(rawPath, pathResolverPrefix), "/", 4)
	if len(parts) < 3 || parts[1] != "connectors" {
		return connectorsv1alpha1.ConnectorRef{}, "", false
	}
	ref := connectorsv1alpha1.ConnectorRef{Namespace: parts[0], Name: parts[2]}
	rest := "/"
	if len(parts) == 4 {
		rest += parts[3]
	}
	return ref, rest, ref.Valid()
}

// serveReverse serves an origin-form request.
func (g *Gateway) serveReverse(w http.ResponseWriter, r *http.Request) {
	start := g.opts.Now()
	ctx := r.Context()
	audit := g.auditor(r, "reverse", r.Host)
	fail := func(e *proxyError) {
		writeReverseError(w, e)
		audit.done(e.status, 0, g.opts.Now().Sub(start), e.msg)
	}
	ref, rawPath, ok := reverseRef(r.Host, r.URL)
	if !ok {
		fail(perr(http.StatusNotFound, "no connector is named by this request: use the proxy URL of a connector, "+
			"http://c-<name>.<namespace>.svc… or <gateway>/namespaces/<namespace>/connectors/<name>/…; "+
			"or, as a forward proxy, send CONNECT host:port or an absolute http:// URI with Proxy-Authorization"))
		return
	}
	token, perror := g.reverseToken(ctx, r, ref)
	if perror != nil {
		fail(perror)
		return
	}
	s, perror := g.session(ctx, token, []connectorsv1alpha1.ConnectorRef{ref})
	if perror != nil {
		fail(perror)
		return
	}
	audit.session(s)
	c, perror := g.reverseRoute(ctx, s, ref)
	if perror != nil {
		fail(perror)
		return
	}
	u, err := url.Parse(c.Spec.Address)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		fail(perr(http.StatusServiceUnavailable, "connector %s has no http(s) address to forward to", ref))
		return
	}
	f := g.forwarder(s, c, u.Scheme, canonicalHostPort(u), nil)
	f.protocol = "reverse"
	f.reverse = &reverseTarget{basePath: u.EscapedPath(), rawPath: rawPath}
	f.ServeHTTP(w, r)
}

// reverseTarget is where a reverse-proxied request goes within the
// connector's address.
type reverseTarget struct {
	basePath string // spec.address's escaped path
	rawPath  string // the request's escaped path, the resolver prefix stripped
}

// rewrite points out at the connector's address: its path joined with the
// request's, and removes every header value and query parameter that
// carries the pod token (an authExtractor may read it from anywhere).
func (t *reverseTarget) rewrite(out *http.Request, token tokens.Token) {
	joined := joinPath(t.basePath, t.rawPath)
	p, err := url.PathUnescape(joined)
	if err != nil {
		p = joined // checked by net/http on the way in: cannot happen
	}
	out.URL.Path, out.URL.RawPath = p, ""
	if (&url.URL{Path: p}).EscapedPath() != joined {
		out.URL.RawPath = joined
	}
	tok := string(token)
	for k, vs := range out.Header {
		for _, v := range vs {
			if strings.Contains(v, tok) || strings.Contains(v, base64.StdEncoding.EncodeToString([]byte(tok))) {
				out.Header.Del(k)
				break
			}
		}
	}
	if out.URL.RawQuery == "" {
		return
	}
	q, removed := out.URL.Query(), false
	for k, vs := range q {
		for _, v := range vs {
			if strings.Contains(v, tok) {
				q.Del(k)
				removed = true
				break
			}
		}
	}
	if removed {
		out.URL.RawQuery = q.Encode()
	}
}

// joinPath joins two escaped paths with one slash between them.
func joinPath(base, p string) string {
	switch {
	case base == "" || base == "/":
		if p == "" {
			return "/"
		}
		return p
	case p == "" || p == "/":
		return base
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(p, "/")
}

// reverseToken finds the pod token of a reverse-proxied request: the
// class's authExtractor first, when it has one and it finds a token, then
// Authorization (Basic with the token as password, or Bearer).
func (g *Gateway) reverseToken(ctx context.Context, r *http.Request, ref connectorsv1alpha1.ConnectorRef) (tokens.Token, *proxyError) {
	if tok, perror := g.extractToken(ctx, r, ref); perror != nil || tok != "" {
		return tok, perror
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		g.metrics.auth("missing")
		return "", perr(http.StatusUnauthorized, "authentication required: %s", reverseHelp)
	}
	scheme, value, _ := strings.Cut(h, " ")
	value = strings.TrimSpace(value)
	switch {
	case strings.EqualFold(scheme, "Bearer") && value != "":
		return tokens.Token(value), nil
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			g.metrics.auth("malformed")
			return "", perr(http.StatusUnauthorized, "Authorization is not valid base64: %s", reverseHelp)
		}
		if _, password, _ := strings.Cut(string(raw), ":"); password != "" {
			return tokens.Token(password), nil
		}
	}
	// Neither the header nor its scheme is echoed: it may hold a secret.
	g.metrics.auth("malformed")
	return "", perr(http.StatusUnauthorized, "Authorization carries no token: %s", reverseHelp)
}

// reverseRoute checks that the session's identity may use the connector and
// that the connector is usable through the gateway, as route does for the
// forward proxy.
func (g *Gateway) reverseRoute(ctx context.Context, s *session, ref connectorsv1alpha1.ConnectorRef) (*connectorsv1alpha1.Connector, *proxyError) {
	if perror := g.authorize(ctx, s, ref); perror != nil {
		return nil, perror
	}
	c, perror := g.readConnector(ctx, ref)
	if perror != nil {
		return nil, perror
	}
	if err := c.Usable(); err != nil {
		return nil, perr(http.StatusServiceUnavailable, "%s", err.Error())
	}
	if c.ProxyAddress() == "" {
		return nil, perr(http.StatusForbidden, "connector %s is not served by a proxy (its class declares none)", ref)
	}
	return c, nil
}

// writeReverseError answers a reverse-proxy client: as an origin server,
// so a missing or refused token is 401 with a Basic challenge (git and pip
// retry with their credentials on it), not the forward proxy's 407.
func writeReverseError(w http.ResponseWriter, e *proxyError) {
	if e.status == http.StatusProxyAuthRequired || e.status == http.StatusUnauthorized {
		e = &proxyError{status: http.StatusUnauthorized, msg: e.msg}
		w.Header().Set("WWW-Authenticate", `Basic realm="connectors"`)
	}
	writeProxyError(w, e)
}
