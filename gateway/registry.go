package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	lru "github.com/hashicorp/golang-lru/v2"
)

// The token flow of the distribution spec, for connectors whose Secret is
// a cpaas.io/distribution-registry-token: the client authenticates to the
// gateway with its pod token; the gateway answers the registry's
// challenge itself. go-containerregistry's transport pings the registry's
// /v2/, and for a Bearer challenge asks the token service (the realm) for
// a token of the request's scope with the Secret's user name and password,
// attaches it to every request to the registry's host and refreshes it
// when the registry refuses it; for a Basic challenge it sends the
// credential as Basic. The token never reaches the client. One transport
// per connector, Secret version and scope is kept (bounded LRU): its
// token is reused until the registry refuses it.

// registryLogin is a distribution-registry-token Secret's credential.
type registryLogin struct {
	user, pass string
	version    string // the Secret's resourceVersion: a rotated one is a new cache key
}

// registryTransports keeps the token-flow transports.
type registryTransports struct {
	cache *lru.Cache[string, http.RoundTripper]
}

func newRegistryTransports(size int) *registryTransports {
	c, _ := lru.New[string, http.RoundTripper](size) // size > 0 is checked by the options
	return &registryTransports{cache: c}
}

// transport returns the round tripper that authenticates a request of
// method to path (the upstream's, unescaped) on the registry at u, over
// inner; creating one pings the registry and fetches a token (bounded by
// ctx).
func (rt *registryTransports) transport(ctx context.Context, key string, u *url.URL, login *registryLogin, inner http.RoundTripper, method, path string, query url.Values) (http.RoundTripper, error) {
	scopes := registryScopes(method, path, query)
	key = key + "|" + login.version + "|" + strings.Join(scopes, " ")
	if t, ok := rt.cache.Get(key); ok {
		return t, nil
	}
	reg, err := name.NewRegistry(u.Host, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("address %s is not a registry host: %w", u.Host, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: login.user, Password: login.pass})
	t, err := transport.NewWithContext(ctx, reg, auth, sameScheme{scheme: u.Scheme, inner: inner}, scopes)
	if err != nil {
		return nil, fmt.Errorf("registry login: %w", registryError(err))
	}
	rt.cache.Add(key, t)
	return t, nil
}

// sameScheme refuses requests in another scheme than the connector's
// address: go-containerregistry falls back to plain HTTP for some hosts
// (localhost, private addresses) when HTTPS fails, and a credential must
// never go out in the clear to an https connector's host.
type sameScheme struct {
	scheme string
	inner  http.RoundTripper
}

func (s sameScheme) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != s.scheme && s.scheme == "https" {
		return nil, fmt.Errorf("refused to send a %s request to %s: the connector's address is https", r.URL.Scheme, r.URL.Host)
	}
	return s.inner.RoundTrip(r)
}

// registryError keeps what a token service or registry said and drops
// what it echoed: go-containerregistry's errors quote the registry's
// diagnostics, which never hold the Secret, but the request URL may carry
// a query the client chose.
func registryError(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		msgs := make([]string, 0, len(terr.Errors))
		for _, d := range terr.Errors {
			msgs = append(msgs, string(d.Code)+": "+d.Message)
		}
		if len(msgs) == 0 {
			return fmt.Errorf("the registry answered %d", terr.StatusCode)
		}
		return fmt.Errorf("the registry answered %d: %s", terr.StatusCode, strings.Join(msgs, "; "))
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return fmt.Errorf("%s %s: %w", uerr.Op, (&url.URL{Scheme: "https", Host: hostOf(uerr.URL)}).String(), uerr.Err)
	}
	return err
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "the registry"
}

// registryScopes is the token scope a request needs, after the
// distribution spec: /v2/<repository>/{manifests,blobs,tags,referrers}/…
// is repository:<repository>:pull for reads, :delete for deletes and
// :pull,push otherwise (a cross-repository blob mount also reads the
// repository it mounts from); /v2/_catalog is registry:catalog:*; /v2/
// itself needs none.
func registryScopes(method, path string, query url.Values) []string {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok || rest == "" {
		return nil
	}
	if rest == "_catalog" {
		return []string{"registry:catalog:*"}
	}
	// The last API segment ends the repository name, which may hold the
	// same words ("team/manifests/app").
	repo := ""
	for _, kind := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(rest, kind); i > len(repo) {
			repo = rest[:i]
		}
	}
	if repo == "" {
		return nil
	}
	actions := "pull,push"
	switch method {
	case http.MethodGet, http.MethodHead:
		actions = "pull"
	case http.MethodDelete:
		actions = "delete"
	}
	scopes := []string{"repository:" + repo + ":" + actions}
	if from := query.Get("from"); from != "" && query.Get("mount") != "" && from != repo {
		scopes = append(scopes, "repository:"+from+":pull")
	}
	return scopes
}
