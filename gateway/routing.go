package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

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
		if perror := g.authorize(ctx, s, ref); perror != nil {
			note(perror)
			continue
		}
		c, perror := g.readConnector(ctx, ref)
		if perror != nil {
			note(perror)
			continue
		}
		if !g.isTarget(ctx, c, scheme, hostport) {
			note(perr(http.StatusForbidden, "%s is not an address of connector %s (spec.address or spec.addressExtensions)", hostport, ref))
			continue
		}
		if err := c.Usable(); err != nil {
			return nil, perr(http.StatusServiceUnavailable, "%s", err.Error())
		}
		if c.ProxyAddress() == "" {
			// Usable without a proxy: its class declares none, so it is
			// not the gateway's to serve.
			note(perr(http.StatusForbidden, "connector %s is not served by a proxy (its class declares none)", ref))
			continue
		}
		return c, nil
	}
	return nil, first
}

// authorize asks the authorizer whether the session's identity may use ref.
func (g *Gateway) authorize(ctx context.Context, s *session, ref connectorsv1alpha1.ConnectorRef) *proxyError {
	if err := g.opts.Authorizer.Authorize(ctx, s.id, ref.Namespace, ref.Name); err != nil {
		if errors.Is(err, tokens.ErrForbidden) {
			return perr(http.StatusForbidden, "%s", err.Error())
		}
		return perr(http.StatusServiceUnavailable, "cannot authorize now: %s", err.Error())
	}
	return nil
}

// readConnector reads a connector from the cache.
func (g *Gateway) readConnector(ctx context.Context, ref connectorsv1alpha1.ConnectorRef) (*connectorsv1alpha1.Connector, *proxyError) {
	c, err := g.state.connector(ctx, ref.Namespace, ref.Name)
	switch {
	case apierrors.IsNotFound(err):
		return nil, perr(http.StatusNotFound, "connector %s not found", ref)
	case err != nil:
		return nil, perr(http.StatusServiceUnavailable, "cannot read connector %s now", ref)
	}
	return c, nil
}

// isTarget says whether scheme://hostport is one of the connector's
// addresses. The class (a copy from the cache) is read only when the
// connector's own addresses do not match: for a default extension.
func (g *Gateway) isTarget(ctx context.Context, c *connectorsv1alpha1.Connector, scheme, hostport string) bool {
	return targets(c.Addresses(nil), scheme, hostport) || targets(c.Addresses(g.state.class(ctx, c)), scheme, hostport)
}

// targets says whether scheme://hostport is one of a connector's addresses
// (default ports 443 and 80).
func targets(addrs []string, scheme, hostport string) bool {
	want := strings.ToLower(hostport)
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

// current re-reads the connector and checks that it is still the one the
// tunnel was opened for, still targets the host, is Ready and may still be
// used by the identity (the authorizer caches its answers).
func (f *forwarder) current(ctx context.Context) (*connectorsv1alpha1.Connector, *proxyError) {
	ref := f.c.Ref()
	c, err := f.g.state.connector(ctx, ref.Namespace, ref.Name)
	switch {
	case apierrors.IsNotFound(err) || (err == nil && c.UID != f.c.UID):
		return nil, perr(http.StatusNotFound, "connector %s no longer exists", ref)
	case err != nil:
		return nil, perr(http.StatusServiceUnavailable, "cannot read connector %s now", ref)
	case !f.g.isTarget(ctx, c, f.scheme, f.hostport):
		return nil, perr(http.StatusForbidden, "%s is no longer an address of connector %s", f.hostport, ref)
	}
	if err := c.Usable(); err != nil {
		return nil, perr(http.StatusServiceUnavailable, "%s", err.Error())
	}
	if err := f.g.opts.Authorizer.Authorize(ctx, f.s.id, ref.Namespace, ref.Name); err != nil {
		if errors.Is(err, tokens.ErrForbidden) {
			return nil, perr(http.StatusForbidden, "%s", err.Error())
		}
		return nil, perr(http.StatusServiceUnavailable, "cannot authorize now: %s", err.Error())
	}
	return c, nil
}

// requestHostPort normalizes a Host header to host:port.
func requestHostPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return strings.ToLower(host)
	}
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	return strings.ToLower(net.JoinHostPort(strings.Trim(host, "[]"), port))
}
