//go:build integration

package gateway_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/connectors-io/connectors/internal/testbed"
)

// harborCLIPassword decrypts a harbor-cli configuration's password as
// harbor-cli does: AES-GCM under the base64 key of HARBOR_ENCRYPTION_KEY,
// the base64 of nonce and ciphertext.
func harborCLIPassword(t *testing.T, keyB64, encrypted string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keyB64))
	if err != nil {
		t.Fatalf("HARBOR_ENCRYPTION_KEY is not base64: %v", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatalf("HARBOR_ENCRYPTION_KEY is no AES key (%d bytes): %v", len(key), err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil || len(data) < gcm.NonceSize() {
		t.Fatalf("the password is not base64 of a nonce and a ciphertext: %v", err)
	}
	plain, err := gcm.Open(nil, data[:gcm.NonceSize()], data[gcm.NonceSize():], nil)
	if err != nil {
		t.Fatalf("the password does not decrypt with HARBOR_ENCRYPTION_KEY: %v", err)
	}
	return string(plain)
}

// TestTheHarborClassPushesImagesThroughHarborsTokenServiceAndReachesItsAPIWithOnlyTheMountedFiles:
// crane, with the harbor class's config.json only, pushes and pulls an
// image through the registry path resolver to a Harbor-shaped server whose
// registry takes only tokens of its token service: the gateway logs in
// with the basic-auth Secret. curl, with the mounted harbor-cli-config
// (its password decrypts with the mounted HARBOR_ENCRYPTION_KEY as
// harbor-cli decrypts it), https.proxy and ca.cert, reads Harbor's API
// through the forward proxy with the Secret's credential in place of the
// placeholder.
func TestTheHarborClassPushesImagesThroughHarborsTokenServiceAndReachesItsAPIWithOnlyTheMountedFiles(t *testing.T) {
	crane := testbed.CranePath(t)
	e := startGateway(t, nil)
	installClass(t, "harbor")
	ns := namespace(t, "harbor")
	harbor := testbed.StartHarbor(t, "robot$ci", "the-real-harbor-password")
	sec := &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "robot$ci", "password": "the-real-harbor-password"}}
	c := connectorOfClass(t, "harbor", ns, "harbor", harbor.URL, sec, harbor.CAPEM, "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")

	t.Run("crane pushes and pulls with the mounted config.json", func(t *testing.T) {
		dir := e.mount(t, "harbor", "registry-config", c, "http://"+e.addr+"/namespaces/"+ns+"/connectors/harbor", tok)
		env := []string{"DOCKER_CONFIG=" + dir}
		image := e.addr + "/namespaces/" + ns + "/connectors/harbor/team/app"
		run := func(args ...string) string {
			return testbed.Run(t, env, "", crane, append([]string{"--insecure"}, args...)...)
		}
		out := run("append", "-f", layerTar(t, "hello.txt", "hello from harbor\n"), "-t", image+":v1")
		digest := strings.TrimSpace(run("digest", image+":v1"))
		exported := filepath.Join(t.TempDir(), "fs.tar")
		out += run("export", image+"@"+digest, exported)
		if fs := testbed.Run(t, nil, "", "tar", "-xOf", exported, "hello.txt"); fs != "hello from harbor\n" {
			t.Errorf("the pulled image's hello.txt is %q", fs)
		}
		n, scopes := harbor.Registry.TokensIssued()
		if n == 0 || !strings.Contains(strings.Join(scopes, " "), "repository:team/app:pull,push") {
			t.Errorf("the token service issued %d tokens for %v, want the push scope of team/app", n, scopes)
		}
		if strings.Contains(out, "the-real-harbor-password") || strings.Contains(out, string(tok)) {
			t.Error("crane's output holds a secret")
		}
	})

	t.Run("a class without connectors.io/registry-login gets Basic on the registry path, never a login", func(t *testing.T) {
		installClass(t, "git")
		plain := &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "robot$ci", "password": "the-real-harbor-password"}}
		connectorOfClass(t, "git", ns, "plain", harbor.URL, plain, harbor.CAPEM, "http://"+e.addr)
		before, _ := harbor.Registry.TokensIssued()
		status, _, _ := reverseGet(t, e, e.addr, "/v2/namespaces/"+ns+"/connectors/plain/team/app/tags/list", bearer(string(tok)))
		if after, _ := harbor.Registry.TokensIssued(); status != 401 || after != before {
			t.Errorf("got %d and %d new tokens, want the registry's 401 to Basic and no token", status, after-before)
		}
	})

	t.Run("curl reads the API with the mounted harbor-cli-config through the forward proxy", func(t *testing.T) {
		dir := e.mount(t, "harbor", "harbor-cli-config", c, "http://"+e.addr+"/namespaces/"+ns+"/connectors/harbor", tok)
		raw, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Current     string `json:"current-credential-name"`
			Credentials []struct {
				Name          string `json:"name"`
				Username      string `json:"username"`
				Password      string `json:"password"`
				ServerAddress string `json:"serveraddress"`
			} `json:"credentials"`
		}
		if err := yaml.Unmarshal(raw, &cfg); err != nil || len(cfg.Credentials) != 1 || cfg.Credentials[0].Name != cfg.Current ||
			cfg.Credentials[0].ServerAddress != harbor.URL {
			t.Fatalf("config.yaml (%v):\n%s", err, raw)
		}
		key, err := os.ReadFile(filepath.Join(dir, "HARBOR_ENCRYPTION_KEY"))
		if err != nil {
			t.Fatal(err)
		}
		cred := cfg.Credentials[0]
		password := harborCLIPassword(t, string(key), cred.Password)
		if password != "connectors-placeholder" {
			t.Errorf("the configured password decrypts to %q, want the placeholder", password)
		}
		proxy, err := os.ReadFile(filepath.Join(dir, "https.proxy"))
		if err != nil {
			t.Fatal(err)
		}
		out := testbed.Run(t, []string{"HTTPS_PROXY=" + strings.TrimSpace(string(proxy))}, "", "curl", "-sS", "--fail-with-body",
			"--cacert", filepath.Join(dir, "ca.cert"), "-u", cred.Username+":"+password, cred.ServerAddress+"/api/v2.0/projects")
		if !strings.Contains(out, `"name":"team"`) {
			t.Fatalf("curl got %q", out)
		}
		paths, credentialed := harbor.APIRequests()
		if len(paths) == 0 || paths[len(paths)-1] != "/api/v2.0/projects" || !credentialed {
			t.Errorf("Harbor got %v, each with the Secret's credential: %v", paths, credentialed)
		}
		if strings.Contains(string(raw)+out, "the-real-harbor-password") {
			t.Error("the mounted config.yaml or curl's output holds the credential")
		}
	})
}
