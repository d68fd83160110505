package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/connectors-io/connectors/internal/registrylogin"
)

// The token flow of the distribution spec, for connectors whose Secret is
// a cpaas.io/distribution-registry-token: the client authenticates to the
// gateway with its pod token; the gateway answers the registry's
// challenge itself (package registrylogin: go-containerregistry's transport
// pings the registry's /v2/, and for a Bearer challenge asks the token
// service, the realm, for a token of the request's scope with the Secret's
// user name and password, attaches it to every request to the registry's
// host and refreshes it when the registry refuses it; for a Basic
// challenge it sends the credential as Basic). The token never reaches the
// client. One transport
// per connector, trust, address, Secret version and scope is kept (bounded
// LRU) for registryTransportTTL: below the shortest token lifetime the
// spec allows (60 s), so that a cached token does not expire under a
// write, whose body cannot be sent twice.

// registryLogin is a distribution-registry-token Secret's credential.
type registryLogin struct {
	user, pass string
	version    string // the Secret's resourceVersion: a rotated one is a new cache key
}

// registryTransportTTL is how long a token-flow transport is reused.
const registryTransportTTL = 45 * time.Second

// registryTransports keeps the token-flow transports.
type registryTransports struct {
	cache *lru.Cache[string, registryTransport]
	now   func() time.Time
}

type registryTransport struct {
	t       http.RoundTripper
	created time.Time
}

func newRegistryTransports(size int, now func() time.Time) *registryTransports {
	c, _ := lru.New[string, registryTransport](size) // size > 0 is checked by the options
	return &registryTransports{cache: c, now: now}
}

// transport returns the round tripper that authenticates a request of
// method to path (the upstream's, unescaped) on the registry at u, over
// inner; creating one pings the registry and fetches a token (bounded by
// ctx).
func (rt *registryTransports) transport(ctx context.Context, key string, u *url.URL, login *registryLogin, inner http.RoundTripper, scopes []string) (http.RoundTripper, error) {
	key = strings.Join(append([]string{key, u.Scheme, u.Host, login.version}, scopes...), "|")
	if t, ok := rt.cache.Get(key); ok && rt.now().Sub(t.created) < registryTransportTTL {
		return t.t, nil
	}
	t, err := registrylogin.Transport(ctx, u, login.user, login.pass, inner, scopes, describeUpstreamError)
	if err != nil {
		return nil, err
	}
	rt.cache.Add(key, registryTransport{t: t, created: rt.now()})
	return t, nil
}

// registryScopes is the token scope a request needs, after the
// distribution spec: /v2/<repository>/{manifests,blobs,tags,referrers}/…
// is repository:<repository>:pull for reads, :delete for deletes and
// :pull,push otherwise (a cross-repository blob mount also reads the
// repository it mounts from); /v2/_catalog is registry:catalog:*; /v2/
// itself needs none. A repository name that is not one (the token request
// would carry it) is an error.
func registryScopes(method, path string, query url.Values) ([]string, error) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok || rest == "" {
		return nil, nil
	}
	if rest == "_catalog" {
		return []string{"registry:catalog:*"}, nil
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
		return nil, nil
	}
	if !validRepository(repo) {
		return nil, fmt.Errorf("%q is not a repository name", repo)
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
		if !validRepository(from) {
			return nil, fmt.Errorf("mount source %q is not a repository name", from)
		}
		scopes = append(scopes, "repository:"+from+":pull")
	}
	return scopes, nil
}

// validRepository is the distribution spec's repository name grammar
// (lower-case path components of [a-z0-9] joined by ., _, __ or -).
func validRepository(repo string) bool {
	return len(repo) <= 255 && repositoryName.MatchString(repo)
}

// repositoryName is the spec's <name> grammar.
var repositoryName = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
