//go:build integration

package gateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/connectors-io/connectors/internal/testbed"
)

// TestNpmPublishesAndInstallsFromAPrivateRegistryWithOnlyTheMountedNpmrc:
// the real npm, with the npm class's .npmrc and nothing else, publishes a
// package to verdaccio (which lets only its user read or publish) and
// installs it again, through the forward proxy; the registry serves it to
// its user only, and neither the mounted files nor npm's output hold the
// credential.
func TestNpmPublishesAndInstallsFromAPrivateRegistryWithOnlyTheMountedNpmrc(t *testing.T) {
	reg := testbed.StartVerdaccio(t, "npm-user", "the-real-npm-password")
	if _, err := testbed.RunErr(t, nil, "", "npm", "--version"); err != nil {
		t.Fatal("npm is missing: install the Debian packages nodejs and npm (.ci/run does)")
	}
	e := startGateway(t, nil)
	installClass(t, "npm")
	ns := namespace(t, "npm")
	sec := &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "npm-user", "password": "the-real-npm-password"}}
	c := connectorOfClass(t, "npm", ns, "registry", reg.URL, sec, reg.CAPEM, "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")

	dir := e.mount(t, "npm", "npmrc", c, "http://"+e.addr, tok)
	npmrc, err := os.ReadFile(filepath.Join(dir, ".npmrc"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(npmrc), "the-real-npm-password") {
		t.Fatal("the mounted .npmrc holds the credential")
	}
	env := []string{
		"NPM_CONFIG_USERCONFIG=" + filepath.Join(dir, ".npmrc"),
		"NPM_CONFIG_UPDATE_NOTIFIER=false", "NPM_CONFIG_AUDIT=false", "NPM_CONFIG_FUND=false", "NPM_CONFIG_FETCH_RETRIES=0", "NPM_CONFIG_FETCH_TIMEOUT=20000",
	}
	// Each npm run has a cache of its own: install fetches the tarball from
	// the registry, not from publish's cache.
	npm := func(dir string, args ...string) string {
		return testbed.Run(t, append(env, "NPM_CONFIG_CACHE="+t.TempDir()), dir, "npm", args...)
	}

	pkg := t.TempDir()
	for name, body := range map[string]string{
		"package.json": `{"name": "hello-connectors", "version": "1.0.0", "main": "index.js", "license": "MIT"}`,
		"index.js":     `module.exports = "hello from the private registry";` + "\n",
	} {
		if err := os.WriteFile(filepath.Join(pkg, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := npm(pkg, "publish")

	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name": "app", "version": "0.0.0", "private": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out += npm(app, "install", "hello-connectors@1.0.0")
	got := testbed.Run(t, nil, app, "node", "-e", `console.log(require("hello-connectors"))`)
	if strings.TrimSpace(got) != "hello from the private registry" {
		t.Fatalf("the installed package says %q\n%s", got, out)
	}

	// The registry serves the package to its user only: what npm got, the
	// gateway's credential got.
	for _, tt := range []struct {
		user, pass string
		want       int
	}{{"", "", http.StatusUnauthorized}, {"npm-user", "the-real-npm-password", http.StatusOK}} {
		if got := reg.Get(t, "hello-connectors", tt.user, tt.pass); got != tt.want {
			t.Errorf("GET hello-connectors as %q: %d, want %d", tt.user, got, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(reg.Storage, "hello-connectors", "hello-connectors-1.0.0.tgz")); err != nil {
		t.Errorf("the registry stored no tarball: %v", err)
	}
	if strings.Contains(out, "the-real-npm-password") || strings.Contains(out, string(tok)) {
		t.Errorf("npm's output holds a secret")
	}
}
