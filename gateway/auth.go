package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

const authHelp = "authenticate with Proxy-Authorization: Basic base64(<namespace>/<connector>:<token of your pod>)"

// authenticate checks Proxy-Authorization and the token in it.
func (g *Gateway) authenticate(ctx context.Context, r *http.Request) (*session, *proxyError) {
	refs, password, perror := parseProxyAuthorization(r.Header.Get("Proxy-Authorization"))
	if perror != nil {
		if perror.msg == missingAuth {
			g.metrics.auth("missing")
		} else {
			g.metrics.auth("malformed")
		}
		return nil, perror
	}
	return g.session(ctx, tokens.Token(password), refs)
}

// session checks a proxy token and the gateway's token policy, and opens
// the session of its identity for the connectors refs.
func (g *Gateway) session(ctx context.Context, token tokens.Token, refs []connectorsv1alpha1.ConnectorRef) (*session, *proxyError) {
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
	if perror := g.tokenPolicy(id); perror != nil {
		g.metrics.auth("policy")
		return nil, perror
	}
	g.metrics.auth("valid")
	return newSession(id, token, refs), nil
}

// tokenPolicy refuses valid tokens the gateway does not take: unbound ones
// (no pod: deleting a pod cannot revoke them) unless AllowUnboundTokens,
// and any whose remaining lifetime exceeds the maximum for its kind.
func (g *Gateway) tokenPolicy(id tokens.Identity) *proxyError {
	left := id.ExpiresAt.Sub(g.opts.Now())
	if id.PodUID == "" {
		if !g.opts.AllowUnboundTokens {
			return perr(http.StatusProxyAuthRequired, "proxy token refused: it is not bound to a pod (mount the connectors-csi volume, "+
				"or ask the gateway's operator for --allow-unbound-tokens to use tokens of the token API)")
		}
		if left > g.opts.MaxUnboundTokenLifetime {
			return perr(http.StatusProxyAuthRequired, "proxy token refused: an unbound token may live at most %s, this one %s more", g.opts.MaxUnboundTokenLifetime, left.Round(time.Second))
		}
		return nil
	}
	if left > g.opts.MaxTokenLifetime {
		return perr(http.StatusProxyAuthRequired, "proxy token refused: a token may live at most %s, this one %s more", g.opts.MaxTokenLifetime, left.Round(time.Second))
	}
	return nil
}

const missingAuth = "proxy authentication required: " + authHelp

// parseProxyAuthorization reads a Proxy-Authorization header: Basic
// base64("<namespace>/<connector>[,…]:<token>"). Its errors never quote the
// header (a client that swapped user and password would see its token).
func parseProxyAuthorization(h string) ([]connectorsv1alpha1.ConnectorRef, string, *proxyError) {
	if h == "" {
		return nil, "", perr(http.StatusProxyAuthRequired, "%s", missingAuth)
	}
	scheme, enc, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return nil, "", perr(http.StatusProxyAuthRequired, "Proxy-Authorization must use the Basic scheme: %s", authHelp)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return nil, "", perr(http.StatusProxyAuthRequired, "Proxy-Authorization is not valid base64: %s", authHelp)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || password == "" {
		return nil, "", perr(http.StatusProxyAuthRequired, "Proxy-Authorization carries no token: %s", authHelp)
	}
	refs, err := parseUser(user)
	if err != nil {
		return nil, "", perr(http.StatusProxyAuthRequired, "%s: %s", err.Error(), authHelp)
	}
	return refs, password, nil
}

// parseUser reads "ns/name[,ns/name…]" (the user may arrive URL-encoded).
func parseUser(user string) ([]connectorsv1alpha1.ConnectorRef, error) {
	if u, err := url.QueryUnescape(user); err == nil {
		user = u
	}
	var refs []connectorsv1alpha1.ConnectorRef
	for _, part := range strings.Split(user, ",") {
		ns, name, ok := strings.Cut(strings.TrimSpace(part), "/")
		if !ok || !(connectorsv1alpha1.ConnectorRef{Namespace: ns, Name: name}).Valid() {
			// The part is not echoed: a client that swapped user and
			// password would see its token in the answer and the audit log.
			return nil, errors.New("the proxy user must name connectors as <namespace>/<name>[,<namespace>/<name>…]")
		}
		refs = append(refs, connectorsv1alpha1.ConnectorRef{Namespace: ns, Name: name})
	}
	if len(refs) > 16 {
		return nil, errors.New("proxy user names more than 16 connectors")
	}
	return refs, nil
}
