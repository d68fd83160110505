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
// (path resolver), which is stripped; for registries, whose clients put
// the prefix in the repository name, /v2/namespaces/<namespace>/connectors/<name>/<repository>
// becomes /v2/<repository>. A Host that names a connector wins; a path
// prefix that names the same connector is stripped too (the original's
// docs show both forms in one URL). rawPath is the escaped path to
// forward; clientPrefix and upstreamPrefix map the upstream's paths back
// (Location, Link): an upstream path below upstreamPrefix, joined to the
// connector's address path, is clientPrefix and the rest.
func reverseRef(host string, u *url.URL) (ref connectorsv1alpha1.ConnectorRef, rawPath, clientPrefix, upstreamPrefix string, ok bool) {
	rawPath = u.EscapedPath()
	byHost, hostOK := hostRef(host)
	byPath, rest, prefix, upPrefix, pathOK := pathRef(rawPath)
	switch {
	case hostOK && pathOK && byPath == byHost:
		return byHost, rest, prefix, upPrefix, true
	case hostOK:
		return byHost, rawPath, "", "", true
	case pathOK:
		return byPath, rest, prefix, upPrefix, true
	}
	return connectorsv1alpha1.ConnectorRef{}, "", "", "", false
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

// registryPrefix begins the path of every OCI distribution request.
const registryPrefix = "/v2/"

// pathRef reads /namespaces/<namespace>/connectors/<name>[/rest] from an
// escaped path and returns the rest ("/" when empty), or
// /v2/namespaces/<namespace>/connectors/<name>/<rest> and returns
// /v2/<rest>; with the prefixes that map upstream paths back.
func pathRef(rawPath string) (ref connectorsv1alpha1.ConnectorRef, rest, clientPrefix, upstreamPrefix string, ok bool) {
	p, registry := strings.CutPrefix(rawPath, "/v2")
	if !strings.HasPrefix(p, pathResolverPrefix) {
		return connectorsv1alpha1.ConnectorRef{}, "", "", "", false
	}
	parts := strings.SplitN(strings.TrimPrefix(p, pathResolverPrefix), "/", 4)
	if len(parts) < 3 || parts[1] != "connectors" {
		return connectorsv1alpha1.ConnectorRef{}, "", "", "", false
	}
	ref = connectorsv1alpha1.ConnectorRef{Namespace: parts[0], Name: parts[2]}
	clientPrefix = pathResolverPrefix + parts[0] + "/connectors/" + parts[2]
	rest = "/"
	if len(parts) == 4 {
		rest += parts[3]
	}
	if registry {
		return ref, "/v2" + rest, "/v2" + clientPrefix, "/v2", ref.Valid()
	}
	return ref, rest, clientPrefix, "", ref.Valid()
}

// isRegistryPing is the API version check every registry client sends
// first, to the registry's root.
func isRegistryPing(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == registryPrefix || r.URL.Path == strings.TrimSuffix(registryPrefix, "/"))
}

// hasDotSegment says whether an escaped path holds a "." or ".." segment,
// raw or percent-encoded: the upstream (or a front end before it) would
// resolve it and leave the connector's address path.
func hasDotSegment(rawPath string) bool {
	for _, seg := range strings.Split(rawPath, "/") {
		if s, err := url.PathUnescape(seg); err != nil || s == "." || s == ".." {
			return true
		}
	}
	return false
}

// ownChallenge replaces an upstream's authentication challenge with the
// gateway's: the client authenticates to the gateway only.
func ownChallenge(resp *http.Response) {
	resp.Header.Del("WWW-Authenticate")
	resp.Header.Del("Proxy-Authenticate")
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Header.Set("WWW-Authenticate", `Basic realm="connectors"`)
	}
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
	ref, rawPath, clientPrefix, upstreamPrefix, ok := reverseRef(r.Host, r.URL)
	if !ok && isRegistryPing(r) {
		status, msg := g.serveRegistryPing(w, r)
		audit.done(status, 0, g.opts.Now().Sub(start), msg)
		return
	}
	if !ok {
		fail(perr(http.StatusNotFound, "no connector is named by this request: use the proxy URL of a connector, "+
			"http://c-<name>.<namespace>.svc… or <gateway>/namespaces/<namespace>/connectors/<name>/…; "+
			"or, as a forward proxy, send CONNECT host:port or an absolute http:// URI with Proxy-Authorization"))
		return
	}
	if hasDotSegment(rawPath) {
		fail(perr(http.StatusBadRequest, "the path may not hold . or .. segments"))
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
	f.reverse = &reverseTarget{basePath: u.EscapedPath(), rawPath: rawPath, upstream: u,
		clientPrefix: clientPrefix, upstreamPrefix: joinPath(u.EscapedPath(), upstreamPrefix),
		registry: upstreamPrefix == strings.TrimSuffix(registryPrefix, "/")}
	f.ServeHTTP(w, r)
}

// serveRegistryPing answers GET /v2/ for every connector (a registry client
// asks before it names a repository): 401 with a Basic challenge without a
// token, so that it sends the mounted config.json's credential, then 200
// once the token is valid. Which connectors the token may use is checked
// per request.
func (g *Gateway) serveRegistryPing(w http.ResponseWriter, r *http.Request) (int, string) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	token, perror := g.reverseToken(r.Context(), r, connectorsv1alpha1.ConnectorRef{})
	if perror == nil {
		_, perror = g.session(r.Context(), token, nil)
	}
	if perror != nil {
		writeReverseError(w, perror)
		return perror.status, perror.msg
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
	return http.StatusOK, ""
}

// reverseTarget is where a reverse-proxied request goes within the
// connector's address.
type reverseTarget struct {
	basePath       string   // spec.address's escaped path
	rawPath        string   // the request's escaped path, the resolver prefix stripped
	upstream       *url.URL // spec.address
	clientPrefix   string   // what upstreamPrefix is to the client (the resolver prefix)
	upstreamPrefix string   // the upstream path that clientPrefix stands for
	// registry: the client used the registries' path resolver
	// (/v2/namespaces/…): a basic-auth Secret is a registry login.
	registry bool
}

// mapBack turns a URL the upstream sent (Location of a redirect or of a
// registry's blob upload, a Link to the next page) into the client's: a
// URL of the upstream (relative, or absolute on its scheme and host)
// below upstreamPrefix goes back through the proxy URL the client used,
// as a path; any other URL is kept (a redirect to storage elsewhere).
func (t *reverseTarget) mapBack(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || (u.IsAbs() && (!strings.EqualFold(u.Scheme, t.upstream.Scheme) || !strings.EqualFold(u.Host, t.upstream.Host))) ||
		(!u.IsAbs() && (u.Host != "" || !strings.HasPrefix(u.Path, "/"))) {
		return raw
	}
	p := u.EscapedPath()
	rest, ok := strings.CutPrefix(p, strings.TrimSuffix(t.upstreamPrefix, "/"))
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return raw
	}
	out := &url.URL{RawQuery: u.RawQuery, Fragment: u.Fragment}
	mapped := t.clientPrefix + rest
	if mapped == "" {
		mapped = "/"
	}
	if unescaped, err := url.PathUnescape(mapped); err == nil {
		out.Path = unescaped
		if out.EscapedPath() != mapped {
			out.RawPath = mapped
		}
	}
	return out.String()
}

// mapResponse maps the upstream's Location and the URLs of its Link
// headers back to the client's (mapBack).
func (t *reverseTarget) mapResponse(h http.Header) {
	if loc := h.Get("Location"); loc != "" {
		h.Set("Location", t.mapBack(loc))
	}
	links := h.Values("Link")
	if len(links) == 0 {
		return
	}
	mapped := make([]string, len(links))
	for i, l := range links {
		var b strings.Builder
		for {
			start := strings.IndexByte(l, '<')
			end := strings.IndexByte(l[max(start, 0):], '>') + max(start, 0)
			if start < 0 || end <= start {
				b.WriteString(l)
				break
			}
			b.WriteString(l[:start+1])
			b.WriteString(t.mapBack(l[start+1 : end]))
			l = l[end:]
			b.WriteByte('>')
			l = l[1:]
		}
		mapped[i] = b.String()
	}
	h["Link"] = mapped
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
