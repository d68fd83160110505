package gateway

import (
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
		if got := registryScopes(tt.method, tt.path, q); !slices.Equal(got, tt.want) {
			t.Errorf("%s %s?%s: scopes %v, want %v", tt.method, tt.path, tt.query, got, tt.want)
		}
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
