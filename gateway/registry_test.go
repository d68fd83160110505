package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// TestARegistryRequestAsksForTheScopeOfItsRepositoryAndMethod: the token
// scope follows the distribution spec's paths.
func TestARegistryRequestAsksForTheScopeOfItsRepositoryAndMethod(t *testing.T) {
	for _, tt := range []struct {
		method, path, query string
		want                []string
	}{
		{"GET", "/v2/", "", nil},
		{"GET", "/v2/_catalog", "n=10", []string{"registry:catalog:*"}},
		{"GET", "/v2/team/app/manifests/v1", "", []string{"repository:team/app:pull"}},
		{"HEAD", "/v2/team/app/blobs/sha256:abc", "", []string{"repository:team/app:pull"}},
		{"GET", "/v2/team/app/tags/list", "", []string{"repository:team/app:pull"}},
		{"POST", "/v2/team/app/blobs/uploads/", "", []string{"repository:team/app:pull,push"}},
		{"PATCH", "/v2/a/b/c/blobs/uploads/uuid", "", []string{"repository:a/b/c:pull,push"}},
		{"PUT", "/v2/team/app/manifests/v1", "", []string{"repository:team/app:pull,push"}},
		{"DELETE", "/v2/team/app/manifests/sha256:abc", "", []string{"repository:team/app:delete"}},
		{"POST", "/v2/team/app/blobs/uploads/", "mount=sha256:abc&from=team/base", []string{"repository:team/app:pull,push", "repository:team/base:pull"}},
		// a repository named like a path segment of the API
		{"GET", "/v2/blobs/manifests/manifests/v1", "", []string{"repository:blobs/manifests:pull"}},
		{"HEAD", "/v2/x/manifests/y/blobs/sha256:abc", "", []string{"repository:x/manifests/y:pull"}},
		{"GET", "/other", "", nil},
	} {
		q, _ := url.ParseQuery(tt.query)
		if got, err := registryScopes(tt.method, tt.path, q); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s %s?%s: scopes %v (%v), want %v", tt.method, tt.path, tt.query, got, err, tt.want)
		}
	}
	t.Run("names that are no repository are refused, never put in a token request", func(t *testing.T) {
		for _, tt := range []struct{ path, query string }{
			{"/v2/x:pull,push repository:y/manifests/t", ""},
			{"/v2/Team/App/manifests/v1", ""},
			{"/v2/team/app/blobs/uploads/", "mount=sha256:abc&from=other:pull,push"},
		} {
			q, _ := url.ParseQuery(tt.query)
			if got, err := registryScopes("POST", tt.path, q); err == nil {
				t.Errorf("%s?%s: scopes %v, want an error", tt.path, tt.query, got)
			}
		}
	})
}

// TestAPathWithDotSegmentsIsFound: raw or encoded, anywhere.
func TestAPathWithDotSegmentsIsFound(t *testing.T) {
	for path, want := range map[string]bool{
		"/v2/team/app/manifests/v1": false, "/org/app.git/info/refs": false, "/a/.hidden/b": false, "/": false,
		"/v2/../x": true, "/a/./b": true, "/a/%2e%2e/b": true, "/a/%2E/b": true, "/a/..": true, "/a/%zz": true,
	} {
		if got := hasDotSegment(path); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}

// TestEveryLinkOfAnAnswerGoesBackThroughTheProxyURL: each <URL> of each
// Link header is mapped; text around them is kept.
func TestEveryLinkOfAnAnswerGoesBackThroughTheProxyURL(t *testing.T) {
	up, _ := url.Parse("https://registry.example.com")
	rt := &reverseTarget{upstream: up, clientPrefix: "/v2/namespaces/ns/connectors/reg", upstreamPrefix: "/v2"}
	h := http.Header{"Link": {`</v2/a/tags/list?n=1&last=x>; rel="next", </v2/b/tags/list>; rel="other"`, "no url here", "<unclosed"}}
	rt.mapResponse(h)
	want := []string{`</v2/namespaces/ns/connectors/reg/a/tags/list?n=1&last=x>; rel="next", </v2/namespaces/ns/connectors/reg/b/tags/list>; rel="other"`, "no url here", "<unclosed"}
	if !slices.Equal(h.Values("Link"), want) {
		t.Errorf("Link %q, want %q", h.Values("Link"), want)
	}
}

// TestUpstreamURLsGoBackThroughTheProxyURLTheClientUsed: Location and Link
// URLs of the upstream map back to the client's prefix; other hosts' URLs
// and paths outside the address stay as they are.
func TestUpstreamURLsGoBackThroughTheProxyURLTheClientUsed(t *testing.T) {
	up, _ := url.Parse("https://registry.example.com:5000")
	registry := &reverseTarget{upstream: up, clientPrefix: "/v2/namespaces/ns/connectors/reg", upstreamPrefix: "/v2"}
	base, _ := url.Parse("https://git.example.com/scm")
	git := &reverseTarget{upstream: base, clientPrefix: "/namespaces/ns/connectors/repo", upstreamPrefix: "/scm"}
	host := &reverseTarget{upstream: base, clientPrefix: "", upstreamPrefix: "/scm"}
	for _, tt := range []struct {
		t        *reverseTarget
		in, want string
	}{
		{registry, "/v2/team/app/blobs/uploads/u1?_state=x", "/v2/namespaces/ns/connectors/reg/team/app/blobs/uploads/u1?_state=x"},
		{registry, "https://registry.example.com:5000/v2/team/app/blobs/uploads/u1?_state=x", "/v2/namespaces/ns/connectors/reg/team/app/blobs/uploads/u1?_state=x"},
		{registry, "https://storage.example.com/blob?sig=1", "https://storage.example.com/blob?sig=1"},
		{registry, "http://registry.example.com:5000/v2/x", "http://registry.example.com:5000/v2/x"},
		{registry, "/v2x/other", "/v2x/other"},
		{registry, "//other.example.com/v2/x", "//other.example.com/v2/x"},
		{git, "/scm/org/app.git/", "/namespaces/ns/connectors/repo/org/app.git/"},
		{git, "/scm", "/namespaces/ns/connectors/repo"},
		{git, "/elsewhere", "/elsewhere"},
		{git, "relative/path", "relative/path"},
		{host, "/scm/org/app.git/", "/org/app.git/"},
		{host, "/scm", "/"},
	} {
		if got := tt.t.mapBack(tt.in); got != tt.want {
			t.Errorf("%s through %s: %q, want %q", tt.in, tt.t.clientPrefix, got, tt.want)
		}
	}
}

// TestTheUpstreamsChallengeNeverReachesTheClient: a registry's Bearer
// realm would draw the proxy host's credential (the pod token) to its
// token service; the client sees the gateway's Basic challenge instead.
func TestTheUpstreamsChallengeNeverReachesTheClient(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{
		"Www-Authenticate":   {`Bearer realm="https://auth.example.com/token",service="registry",scope="repository:x:pull"`},
		"Proxy-Authenticate": {`Basic realm="upstream"`},
	}}
	ownChallenge(resp)
	if got := resp.Header.Values("WWW-Authenticate"); !slices.Equal(got, []string{`Basic realm="connectors"`}) || resp.Header.Get("Proxy-Authenticate") != "" {
		t.Errorf("challenges %q and %q", got, resp.Header.Get("Proxy-Authenticate"))
	}
	ok := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Www-Authenticate": {`Bearer realm="x"`}}}
	if ownChallenge(ok); ok.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("a 200 kept the upstream's challenge")
	}
}
