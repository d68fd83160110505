//go:build integration

package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/connectors-io/connectors/internal/testbed"
)

// TestPipDownloadsAndInstallsFromAPrivateIndexWithOnlyTheMountedPipConf:
// Debian's pip, with the pypi class's pip.conf and nothing else, downloads
// and installs a package from a PEP 503 index over HTTPS that demands
// Basic auth, through the reverse proxy; every request the index got
// carried the connector's credential, and neither the mounted files nor
// pip's output hold it.
func TestPipDownloadsAndInstallsFromAPrivateIndexWithOnlyTheMountedPipConf(t *testing.T) {
	pip := testbed.Pip(t)
	e := startGateway(t, nil)
	installClass(t, "pypi")
	ns := namespace(t, "pypi")
	srv := testbed.StartPyPIServer(t, "pypi-user", "the-real-pypi-password")
	wheel := srv.AddWheel(t, "Hello.Connectors", "1.2.0", "hello from the private index")
	sec := &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "pypi-user", "password": "the-real-pypi-password"}}
	c := connectorOfClass(t, "pypi", ns, "index", srv.URL, sec, srv.CAPEM(), "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")

	dir := e.mount(t, "pypi", "pipconf", c, "http://"+e.addr+"/namespaces/"+ns+"/connectors/index", tok)
	conf, err := os.ReadFile(filepath.Join(dir, "pip.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(conf), "the-real-pypi-password") {
		t.Fatal("the mounted pip.conf holds the credential")
	}
	env := []string{"PIP_CONFIG_FILE=" + filepath.Join(dir, "pip.conf"), "PIP_NO_CACHE_DIR=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"}
	run := func(args ...string) string { return testbed.Run(t, env, "", pip[0], append(pip[1:], args...)...) }

	downloads := t.TempDir()
	out := run("download", "--no-deps", "-d", downloads, "hello-connectors==1.2.0")
	if _, err := os.Stat(filepath.Join(downloads, wheel)); err != nil {
		t.Fatalf("pip download did not fetch %s: %v\n%s", wheel, err, out)
	}
	target := t.TempDir()
	out += run("install", "--no-deps", "--target", target, "hello_connectors")
	greeting := testbed.Run(t, []string{"PYTHONPATH=" + target}, "", pip[0], "-c", "import hello_connectors; print(hello_connectors.GREETING)")
	if strings.TrimSpace(greeting) != "hello from the private index" {
		t.Fatalf("the installed package says %q\n%s", greeting, out)
	}

	n, credentialed := srv.Requests()
	if n < 4 || !credentialed {
		t.Errorf("the index got %d requests, all with the connector's credential: %v", n, credentialed)
	}
	if strings.Contains(out, "the-real-pypi-password") || strings.Contains(out, string(tok)) {
		t.Errorf("pip's output holds a secret")
	}
}
