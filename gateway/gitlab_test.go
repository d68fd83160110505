//go:build integration

package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestTheGitLabClassTakesThePodTokenInPrivateTokenAndGivesGitLabItsAccessToken:
// curl with the token of the mounted glab config.yml in Private-Token
// reaches the API with the Secret's access token in Private-Token (the
// class's authExtractor and generator); the real git with the mounted
// .gitconfig reaches git http-backend with Basic oauth2:<access token>, as
// GitLab takes it for git.
func TestTheGitLabClassTakesThePodTokenInPrivateTokenAndGivesGitLabItsAccessToken(t *testing.T) {
	e := startGateway(t, nil)
	installClass(t, "gitlab")
	ns := namespace(t, "gitlab")
	tok, _ := cp.PodToken(t, ns, "job", "default")
	port := e.addr[strings.LastIndex(e.addr, ":")+1:]
	pat := func() *corev1.Secret {
		return &corev1.Secret{Type: connectorsv1alpha1.SecretTypeGitLabPAT, StringData: map[string]string{"token": "glpat-the-real-token"}}
	}

	t.Run("the API with curl and the glab configuration's token", func(t *testing.T) {
		o := newOrigin(t)
		c := connectorOfClass(t, "gitlab", ns, "gl", o.URL, pat(), o.caPEM(), "http://"+e.addr)
		host := "c-gl." + ns + ".svc.cluster.local"
		dir := e.mount(t, "gitlab", "gitlabconfig", c, "http://"+host+":"+port, tok)
		raw, err := os.ReadFile(filepath.Join(dir, "config.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Hosts map[string]struct {
				Token       string `json:"token"`
				APIProtocol string `json:"api_protocol"`
			} `json:"hosts"`
		}
		if err := yaml.Unmarshal(raw, &cfg); err != nil {
			t.Fatalf("config.yml is not YAML: %v", err)
		}
		h, ok := cfg.Hosts[host+":"+port]
		if !ok || h.Token != string(tok) || h.APIProtocol != "http" {
			t.Fatalf("config.yml names hosts %v, want the proxy host with the pod token over http", cfg.Hosts)
		}
		out := testbed.Run(t, nil, "", "curl", "-sS", "--fail-with-body", "--noproxy", "*", "--resolve", host+":"+port+":127.0.0.1",
			"-H", "Private-Token: "+h.Token, "http://"+host+":"+port+"/api/v4/projects?membership=true")
		if out != "hello from the origin" {
			t.Fatalf("curl got %q", out)
		}
		got := o.last(t)
		if got.header.Get("Private-Token") != "glpat-the-real-token" || got.path != "/api/v4/projects" || got.query != "membership=true" {
			t.Errorf("the origin got Private-Token %q on %s?%s", got.header.Get("Private-Token"), got.path, got.query)
		}
	})

	t.Run("git with the mounted gitconfig", func(t *testing.T) {
		srv := testbed.StartGitServer(t, "oauth2", "glpat-the-real-token")
		srv.BareRepo(t, "group/app.git")
		address := srv.URL + "/git"
		c := connectorOfClass(t, "gitlab", ns, "gl-git", address, pat(), srv.CAPEM(), "http://"+e.addr)
		dir := e.mount(t, "gitlab", "gitconfig", c, "http://"+e.addr+"/namespaces/"+ns+"/connectors/gl-git", tok)
		refs := testbed.Run(t, []string{"GIT_CONFIG_GLOBAL=" + filepath.Join(dir, ".gitconfig")}, "", "git", "ls-remote", address+"/group/app.git")
		if !strings.Contains(refs, "refs/heads/main") {
			t.Fatalf("ls-remote: %s", refs)
		}
		if n, credentialed := srv.Requests(); n == 0 || !credentialed {
			t.Errorf("the git server got %d requests, each with oauth2:<access token>: %v", n, credentialed)
		}
	})
}
