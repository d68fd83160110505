//go:build integration

package gateway_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestTheGitHubClassGivesGitBasicAndTheAPIABearerFromOneOpaqueToken: one
// connector, its Opaque Secret's token and the class's generator: the real
// git with the mounted .gitconfig reaches git http-backend (the address)
// with Basic x-access-token:<token>, and curl with the mounted http.proxy
// and ca.cert reaches the API (the address extension api) through the
// forward proxy with Bearer <token> in place of hosts.yml's placeholder.
func TestTheGitHubClassGivesGitBasicAndTheAPIABearerFromOneOpaqueToken(t *testing.T) {
	e := startGateway(t, nil)
	installClass(t, "github")
	ns := namespace(t, "github")
	srv := testbed.StartGitServer(t, "x-access-token", "ghp_the-real-token")
	srv.BareRepo(t, "org/app.git")
	api := newOrigin(t)
	sec := &corev1.Secret{Type: corev1.SecretTypeOpaque, StringData: map[string]string{"token": "ghp_the-real-token"}}
	address := srv.URL + "/git"
	c := connectorOfClass(t, "github", ns, "gh", address, sec, append(srv.CAPEM(), api.caPEM()...), "http://"+e.addr)
	c.Spec.AddressExtensions = []connectorsv1alpha1.AddressExtension{{Name: "api", Value: api.URL}}
	if err := cp.Client.Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	setReady(t, c, metav1.ConditionTrue, "", "", "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")

	t.Run("git with the mounted gitconfig", func(t *testing.T) {
		dir := e.mount(t, "github", "gitconfig", c, "http://"+e.addr+"/namespaces/"+ns+"/connectors/gh", tok)
		env := []string{"GIT_CONFIG_GLOBAL=" + filepath.Join(dir, ".gitconfig")}
		clone := filepath.Join(t.TempDir(), "app")
		out := testbed.Run(t, env, "", "git", "clone", address+"/org/app.git", clone)
		if readme, err := os.ReadFile(filepath.Join(clone, "README")); err != nil || string(readme) != "hello from the git server\n" {
			t.Fatalf("the clone has README %q (%v): %s", readme, err, out)
		}
		if n, credentialed := srv.Requests(); n == 0 || !credentialed {
			t.Errorf("the git server got %d requests, each with x-access-token:<token>: %v", n, credentialed)
		}
	})

	t.Run("the API through the forward proxy", func(t *testing.T) {
		dir := e.mount(t, "github", "githubconfig", c, "http://"+e.addr, tok)
		hosts, err := os.ReadFile(filepath.Join(dir, "hosts.yml"))
		if err != nil || !strings.Contains(string(hosts), "oauth_token: placeholder") {
			t.Fatalf("hosts.yml %q (%v), want a placeholder token", hosts, err)
		}
		proxy, err := os.ReadFile(filepath.Join(dir, "http.proxy"))
		if err != nil {
			t.Fatal(err)
		}
		out := testbed.Run(t, []string{"HTTPS_PROXY=" + strings.TrimSpace(string(proxy))}, "", "curl", "-sS", "--fail-with-body",
			"--cacert", filepath.Join(dir, "ca.cert"), "-H", "Authorization: token placeholder", api.URL+"/user/repos?per_page=1")
		if out != "hello from the origin" {
			t.Fatalf("curl got %q", out)
		}
		got := api.last(t)
		if got.header.Get("Authorization") != "Bearer ghp_the-real-token" || got.path != "/user/repos" {
			t.Errorf("the API got Authorization %q on %s", got.header.Get("Authorization"), got.path)
		}
	})
}

// TestGhReadsTheAPIThroughTheForwardProxyWithOnlyTheMountedGithubconfig:
// Debian's gh, with the github class's githubconfig as its configuration
// directory (hosts.yml's placeholder token), the mounted http.proxy as
// HTTPS_PROXY and ca.cert as its only trust, reads a GitHub-Enterprise-
// shaped API (gh's API for a host other than github.com is
// https://<host>/api/v3/) through the forward proxy; the API got the
// connector's token on every request and gh never saw it.
func TestGhReadsTheAPIThroughTheForwardProxyWithOnlyTheMountedGithubconfig(t *testing.T) {
	if _, err := exec.LookPath("gh"); err != nil {
		t.Fatal("gh is missing: install the Debian package gh (.ci/run does)")
	}
	e := startGateway(t, nil)
	installClass(t, "github")
	ns := namespace(t, "gh")
	api := testbed.StartGitHubAPI(t, "ghp_the-real-token")
	sec := &corev1.Secret{Type: corev1.SecretTypeOpaque, StringData: map[string]string{"token": "ghp_the-real-token"}}
	c := connectorOfClass(t, "github", ns, "ghe", api.URL, sec, api.CAPEM, "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")

	dir := e.mount(t, "github", "githubconfig", c, "http://"+e.addr, tok)
	proxy, err := os.ReadFile(filepath.Join(dir, "http.proxy"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GH_CONFIG_DIR=" + dir, "GH_HOST=" + strings.TrimPrefix(api.URL, "https://"), "HTTPS_PROXY=" + strings.TrimSpace(string(proxy)),
		"SSL_CERT_FILE=" + filepath.Join(dir, "ca.cert"), "GH_NO_UPDATE_NOTIFIER=1", "GH_PROMPT_DISABLED=1", "NO_COLOR=1"}
	login := testbed.Run(t, env, "", "gh", "api", "user", "--jq", ".login")
	repo := testbed.Run(t, env, "", "gh", "api", "repos/org/app", "--jq", ".full_name")
	if strings.TrimSpace(login) != "octo-ci" || strings.TrimSpace(repo) != "org/app" {
		t.Fatalf("gh api: user %q, repository %q", login, repo)
	}
	paths, carried := api.Requests()
	if !slices.Contains(paths, "/api/v3/user") || !slices.Contains(paths, "/api/v3/repos/org/app") || !carried {
		t.Errorf("the API got %v, each with the connector's token: %v", paths, carried)
	}
	if strings.Contains(login+repo, "ghp_the-real-token") || strings.Contains(login+repo, string(tok)) {
		t.Error("gh's output holds a secret")
	}
}
