//go:build integration

package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

// installClass creates a shipped class (kept if it exists).
func installClass(t *testing.T, name string) *connectorsv1alpha1.ConnectorClass {
	t.Helper()
	class := testbed.Class(t, name)
	if err := cp.Client.Create(t.Context(), class); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return class
}

// mount renders the configuration of a shipped class for the connector,
// whose proxy address is proxy, exactly as the CSI driver does, and writes
// its files to a directory.
func (e *env) mount(t *testing.T, className, selection string, c *connectorsv1alpha1.Connector, proxy string, token tokens.Token) string {
	t.Helper()
	return e.mountWith(t, className, selection, nil, c, proxy, token)
}

// mountWith is mount with the volume attribute configuration.params
// (values keyed by configuration name).
func (e *env) mountWith(t *testing.T, className, selection string, params map[string]map[string]string, c *connectorsv1alpha1.Connector, proxy string, token tokens.Token) string {
	t.Helper()
	mounted := c.DeepCopy()
	mounted.Status.Proxy = &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{URL: proxy}}
	files, err := render.Render(render.Input{
		Class: testbed.Class(t, className), Connectors: []*connectorsv1alpha1.Connector{mounted}, Token: token,
		ProxyCACert: e.ca, Selection: selection, ConfigParams: params,
	})
	if err != nil {
		t.Fatalf("render %s of class %s: %v", selection, className, err)
	}
	e.logs.Secret(string(token))
	dir := t.TempDir()
	rendered := map[string]string{}
	for name, data := range files {
		rendered[name] = string(data)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.logs.Rendered(rendered)
	return dir
}

// TestGitClonesListsAndPushesThroughTheReverseProxyWithOnlyTheMountedGitconfig:
// the real git, with the git class's .gitconfig and nothing else, clones,
// runs ls-remote and pushes to a git http-backend that demands Basic auth;
// every request the server got carried the connector's credential, and
// neither the mounted files nor git's output hold it.
func TestGitClonesListsAndPushesThroughTheReverseProxyWithOnlyTheMountedGitconfig(t *testing.T) {
	e := startGateway(t, nil)
	installClass(t, "git")
	ns := namespace(t, "git")
	srv := testbed.StartGitServer(t, "git-user", "the-real-git-password")
	srv.BareRepo(t, "org/app.git")
	sec := &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "git-user", "password": "the-real-git-password"}}
	address := srv.URL + "/git"
	c := connectorOfClass(t, "git", ns, "repo", address, sec, srv.CAPEM(), "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")
	port := e.addr[strings.LastIndex(e.addr, ":")+1:]

	for _, tt := range []struct {
		resolver, proxy string
		extra           []string // git -c options
	}{
		{"path", "http://" + e.addr + "/namespaces/" + ns + "/connectors/repo", nil},
		// The cluster name, resolved to the gateway as cluster DNS would.
		{"host", "http://c-repo." + ns + ".svc.cluster.local:" + port, []string{"-c", "http.curloptResolve=c-repo." + ns + ".svc.cluster.local:" + port + ":127.0.0.1"}},
	} {
		t.Run("the "+tt.resolver+" resolver", func(t *testing.T) {
			dir := e.mount(t, "git", "gitconfig", c, tt.proxy, tok)
			gitconfig, err := os.ReadFile(filepath.Join(dir, ".gitconfig"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(gitconfig), "the-real-git-password") {
				t.Fatal("the mounted .gitconfig holds the credential")
			}
			env := []string{"GIT_CONFIG_GLOBAL=" + filepath.Join(dir, ".gitconfig")}
			git := func(dir string, args ...string) string {
				return testbed.Run(t, env, dir, "git", append(tt.extra, args...)...)
			}
			before, _ := srv.Requests()

			refs := git("", "ls-remote", address+"/org/app.git")
			if !strings.Contains(refs, "refs/heads/main") {
				t.Fatalf("ls-remote: %s", refs)
			}
			clone := filepath.Join(t.TempDir(), "app")
			out := git("", "clone", address+"/org/app.git", clone)
			readme, err := os.ReadFile(filepath.Join(clone, "README"))
			if err != nil || string(readme) != "hello from the git server\n" {
				t.Fatalf("the clone has README %q (%v): %s", readme, err, out)
			}
			file := "from-" + tt.resolver
			if err := os.WriteFile(filepath.Join(clone, file), []byte("pushed\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			git(clone, "add", file)
			git(clone, "-c", "user.name=job", "-c", "user.email=job@example.com", "commit", "-q", "-m", "from the pod")
			out += git(clone, "push", "origin", "main")
			if got := testbed.Run(t, nil, "", "git", "--git-dir", filepath.Join(srv.Root, "org/app.git"), "log", "--format=%s", "-1"); strings.TrimSpace(got) != "from the pod" {
				t.Errorf("the server's last commit is %q, want the pushed one", got)
			}

			n, credentialed := srv.Requests()
			if n-before < 4 || !credentialed {
				t.Errorf("the server got %d requests, all with the connector's credential: %v", n-before, credentialed)
			}
			origin, _ := os.ReadFile(filepath.Join(clone, ".git", "config"))
			for what, s := range map[string]string{"git's output": refs + out, "the clone's config": string(origin)} {
				if strings.Contains(s, "the-real-git-password") || strings.Contains(s, string(tok)) {
					t.Errorf("%s holds a secret", what)
				}
			}
		})
	}

	t.Run("without the mounted gitconfig the server refuses git", func(t *testing.T) {
		if out, err := testbed.RunErr(t, nil, "", "git", "-c", "http.sslVerify=false", "ls-remote", address+"/org/app.git"); err == nil {
			t.Fatalf("ls-remote without credentials succeeded: %s", out)
		}
	})
}
