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

// TestTheJFrogClassServesMavenAndPipFromArtifactorysRepositoryPaths: the
// jfrog class's settings.xml and pip.conf take Debian's Maven and pip
// through the forward proxy to Artifactory's paths (<base>/<repository>
// for Maven, <base>/api/pypi/<repository>/simple/ for pip) of a server
// behind Basic auth, with the connector's credential on every request.
func TestTheJFrogClassServesMavenAndPipFromArtifactorysRepositoryPaths(t *testing.T) {
	e := startGateway(t, nil)
	installClass(t, "jfrog")
	ns := namespace(t, "jfrog")
	tok, _ := cp.PodToken(t, ns, "job", "default")
	basic := func(pass string) *corev1.Secret {
		return &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "ci", "password": pass}}
	}

	t.Run("Maven with settings and mirrorRepository", func(t *testing.T) {
		repo := testbed.StartMavenRepo(t, "ci", "the-real-artifactory-password")
		fillMavenRepo(t, repo, "libs-release")
		c := connectorOfClass(t, "jfrog", ns, "af-maven", repo.URL, basic("the-real-artifactory-password"), repo.CAPEM, "http://"+e.addr)
		dir := e.mountWith(t, "jfrog", "settings", map[string]map[string]string{"settings": {"mirrorRepository": "libs-release"}}, c, "http://"+e.addr, tok)
		mavenValidate(t, dir)
		paths, credentialed := repo.Requests()
		if !slices.Contains(paths, "/repository/libs-release/com/example/corp-parent/1.0/corp-parent-1.0.pom") || !credentialed {
			t.Errorf("Artifactory got %v, each with the connector's credential: %v", paths, credentialed)
		}
	})

	t.Run("pip with pipconf and repository", func(t *testing.T) {
		pip := testbed.Pip(t)
		srv := testbed.StartPyPIServer(t, "ci", "the-real-artifactory-password")
		wheel := srv.AddWheel(t, "team-lib", "0.3.0", "hello from artifactory")
		c := connectorOfClass(t, "jfrog", ns, "af-pypi", srv.URL+"/artifactory", basic("the-real-artifactory-password"), srv.CAPEM(), "http://"+e.addr)
		dir := e.mountWith(t, "jfrog", "pipconf", map[string]map[string]string{"pipconf": {"repository": "pypi-remote"}}, c, "http://"+e.addr, tok)
		conf, err := os.ReadFile(filepath.Join(dir, "pip.conf"))
		if err != nil || !strings.Contains(string(conf), "/artifactory/api/pypi/pypi-remote/simple/") {
			t.Fatalf("pip.conf %q (%v)", conf, err)
		}
		downloads := t.TempDir()
		env := []string{"PIP_CONFIG_FILE=" + filepath.Join(dir, "pip.conf"), "PIP_CERT=" + filepath.Join(dir, "ca.cert"), "PIP_NO_CACHE_DIR=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"}
		out := testbed.Run(t, env, "", pip[0], append(pip[1:], "download", "--no-deps", "-d", downloads, "team-lib")...)
		if _, err := os.Stat(filepath.Join(downloads, wheel)); err != nil {
			t.Fatalf("pip download did not fetch %s: %v\n%s", wheel, err, out)
		}
		if n, credentialed := srv.Requests(); n < 2 || !credentialed {
			t.Errorf("Artifactory got %d requests, each with the connector's credential: %v", n, credentialed)
		}
	})
}
