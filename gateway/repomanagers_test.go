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

// TestTheNexusAndJFrogClassesServeMavenAndPipFromTheRepositoriesTheirParametersName:
// each class's settings.xml and pip.conf, with the repositories named by
// configuration.params (the original's volume attribute), take Debian's
// Maven and pip through the forward proxy to the product's repository
// paths (Nexus: /repository/<name>/; Artifactory: <base>/<name>,
// <base>/api/pypi/<name>/simple/) of a server behind Basic auth, with the
// connector's credential on every request and none in the output.
func TestTheNexusAndJFrogClassesServeMavenAndPipFromTheRepositoriesTheirParametersName(t *testing.T) {
	e := startGateway(t, nil)
	for _, tt := range []struct {
		class string
		// mavenAddress and pypiAddress make the connector's address from
		// the server's URL; indexPath is the pip index's path below it.
		mavenAddress, pypiAddress func(string) string
		indexPath                 string
	}{
		{"nexus", func(u string) string { return strings.TrimSuffix(u, "/repository") }, func(u string) string { return u }, "/repository/team-pypi/simple/"},
		{"jfrog", func(u string) string { return u }, func(u string) string { return u + "/artifactory" }, "/artifactory/api/pypi/team-pypi/simple/"},
	} {
		t.Run(tt.class, func(t *testing.T) {
			installClass(t, tt.class)
			ns := namespace(t, tt.class)
			tok, _ := cp.PodToken(t, ns, "job", "default")
			basic := func(pass string) *corev1.Secret {
				return &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "ci", "password": pass}}
			}

			t.Run("Maven with settings and mirrorRepository", func(t *testing.T) {
				repo := testbed.StartMavenRepo(t, "ci", "the-real-maven-password")
				fillMavenRepo(t, repo, "team-maven")
				c := connectorOfClass(t, tt.class, ns, "maven", tt.mavenAddress(repo.URL), basic("the-real-maven-password"), repo.CAPEM, "http://"+e.addr)
				dir := e.mountWith(t, tt.class, "settings", map[string]map[string]string{"settings": {"mirrorRepository": "team-maven"}}, c, "http://"+e.addr, tok)
				out := mavenValidate(t, dir)
				paths, credentialed := repo.Requests()
				if !slices.Contains(paths, "/repository/team-maven/com/example/corp-parent/1.0/corp-parent-1.0.pom") || !credentialed {
					t.Errorf("the server got %v, each with the connector's credential: %v", paths, credentialed)
				}
				if strings.Contains(out, "the-real-maven-password") || strings.Contains(out, string(tok)) {
					t.Errorf("Maven's output holds a secret")
				}
			})

			t.Run("pip with pipconf and repository", func(t *testing.T) {
				pip := testbed.Pip(t)
				srv := testbed.StartPyPIServer(t, "ci", "the-real-pypi-password")
				wheel := srv.AddWheel(t, "team-lib", "0.3.0", "hello from "+tt.class)
				c := connectorOfClass(t, tt.class, ns, "pypi", tt.pypiAddress(srv.URL), basic("the-real-pypi-password"), srv.CAPEM(), "http://"+e.addr)
				dir := e.mountWith(t, tt.class, "pipconf", map[string]map[string]string{"pipconf": {"repository": "team-pypi"}}, c, "http://"+e.addr, tok)
				if conf, err := os.ReadFile(filepath.Join(dir, "pip.conf")); err != nil || !strings.Contains(string(conf), tt.indexPath) {
					t.Fatalf("pip.conf %q (%v), want the index %s", conf, err, tt.indexPath)
				}
				downloads := t.TempDir()
				env := []string{"PIP_CONFIG_FILE=" + filepath.Join(dir, "pip.conf"), "PIP_CERT=" + filepath.Join(dir, "ca.cert"), "PIP_NO_CACHE_DIR=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"}
				out := testbed.Run(t, env, "", pip[0], append(pip[1:], "download", "--no-deps", "-d", downloads, "team-lib")...)
				if _, err := os.Stat(filepath.Join(downloads, wheel)); err != nil {
					t.Fatalf("pip download did not fetch %s: %v\n%s", wheel, err, out)
				}
				if n, credentialed := srv.Requests(); n < 2 || !credentialed {
					t.Errorf("the index got %d requests, each with the connector's credential: %v", n, credentialed)
				}
				if strings.Contains(out, "the-real-pypi-password") || strings.Contains(out, string(tok)) {
					t.Errorf("pip's output holds a secret")
				}
			})
		})
	}
}
