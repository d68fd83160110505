package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

// Gateway is the forward proxy. Build it with New and run it with Start.
type Gateway struct {
	opts       Options
	leaves     *leafCache
	state      *state
	transports *transportCache
	h2         *http2.Server // serves every HTTP/2 tunnel
	h2base     *http.Server  // its BaseConfig: Shutdown sends GOAWAY to all
	metrics    *metrics
	buffers    *bufferPool

	ready    atomic.Bool
	draining atomic.Bool

	mu       sync.Mutex
	total    int                  // open tunnels
	perConn  map[string]int       // open tunnels per connector
	open     map[*tunnel]struct{} // for shutdown
	inFlight atomic.Int64         // requests being served
	running  atomic.Int64         // tunnel goroutines alive
}

// New checks opts, fills defaults and registers the informers on the cache.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		opts:   opts,
		leaves: newLeafCache(opts.CA, opts.CacheSize, opts.Now),
		state: newState(opts.Cache,
			newSecretWatches(opts.Client, opts.Namespace, opts.CacheSize, opts.Logger, m),
			opts.Namespace, opts.CacheSize),
		metrics: m,
		buffers: newBufferPool(opts.BufferSize),
		perConn: map[string]int{},
		open:    map[*tunnel]struct{}{},
	}
	g.transports = newTransportCache(opts.CacheSize, opts.UpstreamTimeout)
	// MaxHeaderBytes caps HTTP/2 header lists too.
	g.h2base = &http.Server{MaxHeaderBytes: opts.MaxHeaderBytes, IdleTimeout: opts.IdleTimeout, ErrorLog: discardLog}
	g.h2 = &http2.Server{IdleTimeout: opts.IdleTimeout, MaxReadFrameSize: 1 << 20, MaxConcurrentStreams: maxStreamsPerTunnel}
	if err := http2.ConfigureServer(g.h2base, g.h2); err != nil {
		return nil, fmt.Errorf("gateway: HTTP/2 server: %w", err)
	}
	if err := g.state.informers(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// session is an authenticated proxy client.
type session struct {
	id    tokens.Identity
	token tokens.Token
	refs  []connectorRef
	audit []any // the identity's audit keys and values, built once
}

func newSession(id tokens.Identity, token tokens.Token, refs []connectorRef) *session {
	connectors := make([]string, 0, len(refs))
	for _, r := range refs {
		connectors = append(connectors, r.String())
	}
	return &session{id: id, token: token, refs: refs, audit: []any{
		"podNamespace", id.Namespace, "podName", id.PodName, "podUID", id.PodUID,
		"serviceAccount", id.ServiceAccountName, "connectors", connectors,
	}}
}

type connectorRef struct{ namespace, name string }

func (r connectorRef) String() string { return r.namespace + "/" + r.name }

// proxyError is an answer to a proxy client: status and one-line reason.
type proxyError struct {
	status int
	msg    string
}

func (e *proxyError) Error() string { return e.msg }

func perr(status int, format string, args ...any) *proxyError {
	return &proxyError{status: status, msg: oneLine.Replace(fmt.Sprintf(format, args...))}
}

// ServeHTTP is the handler of the plain-HTTP proxy listener.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		g.serveConnect(w, r)
	case r.URL.IsAbs() && r.URL.Scheme == "http":
		g.servePlain(w, r)
	default:
		writeProxyError(w, perr(http.StatusBadRequest,
			"this is a forward proxy: send CONNECT host:port, or an absolute http:// URI, with Proxy-Authorization"))
	}
}

const authHelp = "authenticate with Proxy-Authorization: Basic base64(<namespace>/<connector>:<token of your pod>)"

// authenticate checks Proxy-Authorization and the token in it.
func (g *Gateway) authenticate(ctx context.Context, r *http.Request) (*session, *proxyError) {
	h := r.Header.Get("Proxy-Authorization")
	if h == "" {
		g.metrics.auth("missing")
		return nil, perr(http.StatusProxyAuthRequired, "proxy authentication required: %s", authHelp)
	}
	scheme, enc, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		g.metrics.auth("malformed")
		return nil, perr(http.StatusProxyAuthRequired, "Proxy-Authorization must use the Basic scheme: %s", authHelp)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		g.metrics.auth("malformed")
		return nil, perr(http.StatusProxyAuthRequired, "Proxy-Authorization is not valid base64: %s", authHelp)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || password == "" {
		g.metrics.auth("malformed")
		return nil, perr(http.StatusProxyAuthRequired, "Proxy-Authorization carries no token: %s", authHelp)
	}
	refs, err := parseUser(user)
	if err != nil {
		g.metrics.auth("malformed")
		return nil, perr(http.StatusProxyAuthRequired, "%s: %s", err.Error(), authHelp)
	}
	token := tokens.Token(password)
	id, err := g.opts.Validator.Validate(ctx, token)
	switch {
	case err == nil:
	case tokens.IsInvalid(err):
		g.metrics.auth("invalid")
		return nil, perr(http.StatusProxyAuthRequired, "proxy token refused: %s", err.Error())
	default:
		g.metrics.auth("unavailable")
		return nil, perr(http.StatusServiceUnavailable, "cannot check the proxy token now: %s", err.Error())
	}
	g.metrics.auth("valid")
	return newSession(id, token, refs), nil
}

// parseUser reads "ns/name[,ns/name…]" (the user may arrive URL-encoded).
func parseUser(user string) ([]connectorRef, error) {
	if u, err := url.QueryUnescape(user); err == nil {
		user = u
	}
	var refs []connectorRef
	for _, part := range strings.Split(user, ",") {
		ns, name, ok := strings.Cut(strings.TrimSpace(part), "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			// The part is not echoed: a client that swapped user and
			// password would see its token in the answer and the audit log.
			return nil, errors.New("the proxy user must name connectors as <namespace>/<name>[,<namespace>/<name>…]")
		}
		refs = append(refs, connectorRef{namespace: ns, name: name})
	}
	if len(refs) > 16 {
		return nil, errors.New("proxy user names more than 16 connectors")
	}
	return refs, nil
}

// route finds the session's connector that the target host:port belongs to.
func (g *Gateway) route(ctx context.Context, s *session, scheme, hostport string) (*connectorsv1alpha1.Connector, *proxyError) {
	var first *proxyError
	note := func(e *proxyError) {
		if first == nil {
			first = e
		}
	}
	for _, ref := range s.refs {
		// Authorization first: whether a connector exists is only told to
		// identities that may use it.
		if err := g.opts.Authorizer.Authorize(ctx, s.id, ref.namespace, ref.name); err != nil {
			if errors.Is(err, tokens.ErrForbidden) {
				note(perr(http.StatusForbidden, "%s", err.Error()))
			} else {
				note(perr(http.StatusServiceUnavailable, "cannot authorize now: %s", err.Error()))
			}
			continue
		}
		c, err := g.state.connector(ctx, ref.namespace, ref.name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				note(perr(http.StatusNotFound, "connector %s not found", ref))
			} else {
				note(perr(http.StatusServiceUnavailable, "cannot read connector %s now", ref))
			}
			continue
		}
		if !targets(c, scheme, hostport) {
			note(perr(http.StatusForbidden, "%s is not an address of connector %s (spec.address or spec.addressExtensions)", hostport, ref))
			continue
		}
		if perror := notReady(c, ref); perror != nil {
			return nil, perror
		}
		return c, nil
	}
	return nil, first
}

// notReady is a 503 naming the failing condition, or nil for a Ready
// connector whose status describes its current spec (an edited address is
// not trusted with the credential before the reconciler has checked it).
func notReady(c *connectorsv1alpha1.Connector, ref connectorRef) *proxyError {
	ready := connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionReady)
	if ready != nil && ready.Status == metav1.ConditionTrue {
		if c.Status.ObservedGeneration < c.Generation {
			return perr(http.StatusServiceUnavailable, "connector %s changed and has not been checked again yet", ref)
		}
		return nil
	}
	msg := "its status is not known yet"
	if ready != nil && ready.Message != "" {
		msg = ready.Reason + ": " + ready.Message
	}
	return perr(http.StatusServiceUnavailable, "connector %s is not Ready: %s", ref, msg)
}

// targets says whether scheme://hostport is the connector's address or one
// of its extensions (default ports 443 and 80).
func targets(c *connectorsv1alpha1.Connector, scheme, hostport string) bool {
	want := strings.ToLower(hostport)
	addrs := []string{c.Spec.Address}
	for _, e := range c.Spec.AddressExtensions {
		addrs = append(addrs, e.Value)
	}
	for _, a := range addrs {
		u, err := url.Parse(a)
		if err != nil || u.Hostname() == "" || u.Scheme != scheme {
			continue
		}
		if canonicalHostPort(u) == want {
			return true
		}
	}
	return false
}

func canonicalHostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return strings.ToLower(net.JoinHostPort(u.Hostname(), port))
}

// acquire takes a tunnel slot of the connector.
func (g *Gateway) acquire(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.opts.MaxTunnels || g.perConn[key] >= g.opts.MaxTunnelsPerConnector {
		return false
	}
	g.total++
	g.perConn[key]++
	return true
}

func (g *Gateway) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.perConn[key]--; g.perConn[key] <= 0 {
		delete(g.perConn, key)
	}
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
