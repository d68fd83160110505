//go:build integration

package gateway_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/connectors-io/connectors/internal/testbed"
)

// TestTheNexusClassServesMavenAndPipFromTheRepositoriesItsParametersName:
// the nexus class's settings.xml and pip.conf, with the repositories named
// by configuration.params (the original's volume attribute), take Debian's
// Maven and pip through the forward proxy to /repository/<name>/ of a
// server behind Basic auth, with the connector's credential on every
// request and none in the mounted files.
func TestTheNexusClassServesMavenAndPipFromTheRepositoriesItsParametersName(t *testing.T) {
	e := startGateway(t, nil)
	installClass(t, "nexus")
	ns := namespace(t, "nexus")
	tok, _ := cp.PodToken(t, ns, "job", "default")
	basic := func(pass string) *corev1.Secret {
		return &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "nexus-user", "password": pass}}
	}

	t.Run("Maven with settings and mirrorRepository", func(t *testing.T) {
		repo := testbed.StartMavenRepo(t, "nexus-user", "the-real-nexus-password")
		fillMavenRepo(t, repo, "maven-team")
		address := strings.TrimSuffix(repo.URL, "/repository")
		c := connectorOfClass(t, "nexus", ns, "nexus-maven", address, basic("the-real-nexus-password"), repo.CAPEM, "http://"+e.addr)
		dir := e.mountWith(t, "nexus", "settings", map[string]map[string]string{"settings": {"mirrorRepository": "maven-team"}}, c, "http://"+e.addr, tok)
		out := mavenValidate(t, dir)
		paths, credentialed := repo.Requests()
		if !slices.Contains(paths, "/repository/maven-team/com/example/corp-parent/1.0/corp-parent-1.0.pom") || !credentialed {
			t.Errorf("Nexus got %v, each with the connector's credential: %v", paths, credentialed)
		}
		if strings.Contains(out, "the-real-nexus-password") || strings.Contains(out, string(tok)) {
			t.Errorf("Maven's output holds a secret")
		}
	})

	t.Run("pip with pipconf and repository", func(t *testing.T) {
		pip := testbed.Pip(t)
		srv := testbed.StartPyPIServer(t, "nexus-user", "the-real-pypi-password")
		wheel := srv.AddWheel(t, "team-lib", "0.3.0", "hello from nexus")
		c := connectorOfClass(t, "nexus", ns, "nexus-pypi", srv.URL, basic("the-real-pypi-password"), srv.CAPEM(), "http://"+e.addr)
		dir := e.mountWith(t, "nexus", "pipconf", map[string]map[string]string{"pipconf": {"repository": "pypi-group"}}, c, "http://"+e.addr, tok)
		conf, err := os.ReadFile(filepath.Join(dir, "pip.conf"))
		if err != nil || !strings.Contains(string(conf), "/repository/pypi-group/simple/") {
			t.Fatalf("pip.conf %q (%v)", conf, err)
		}
		downloads := t.TempDir()
		env := []string{"PIP_CONFIG_FILE=" + filepath.Join(dir, "pip.conf"), "PIP_CERT=" + filepath.Join(dir, "ca.cert"), "PIP_NO_CACHE_DIR=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"}
		out := testbed.Run(t, env, "", pip[0], append(pip[1:], "download", "--no-deps", "-d", downloads, "team-lib")...)
		if _, err := os.Stat(filepath.Join(downloads, wheel)); err != nil {
			t.Fatalf("pip download did not fetch %s: %v\n%s", wheel, err, out)
		}
		if n, credentialed := srv.Requests(); n < 2 || !credentialed {
			t.Errorf("Nexus got %d requests, each with the connector's credential: %v", n, credentialed)
		}
		if strings.Contains(out, "the-real-pypi-password") || strings.Contains(out, string(tok)) {
			t.Errorf("pip's output holds a secret")
		}
	})
}
