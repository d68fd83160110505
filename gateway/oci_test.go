//go:build integration

package gateway_test

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// layerTar is a layer with one file.
func layerTar(t *testing.T, name, content string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte(content))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCranePushesAndPullsThroughTheRegistryPathResolverWithOnlyTheMountedConfigJSON:
// crane, with the oci class's config.json and nothing else, pushes an
// image to the distribution registry and pulls it back, through the
// reverse proxy's registry path resolver
// (<gateway>/namespaces/<ns>/connectors/<name>/<repository>): against a
// registry with htpasswd (the gateway sends Basic) and one with a token
// service (the gateway fetches and keeps scoped tokens). The registry
// refuses the same requests without a credential, and crane's output holds
// neither the Secret nor the pod token.
func TestCranePushesAndPullsThroughTheRegistryPathResolverWithOnlyTheMountedConfigJSON(t *testing.T) {
	crane := testbed.CranePath(t)
	e := startGateway(t, nil)
	installClass(t, "oci")
	ns := namespace(t, "oci")
	tok, _ := cp.PodToken(t, ns, "job", "default")
	layer := layerTar(t, "hello.txt", "hello from the registry\n")

	for _, tt := range []struct {
		name      string
		tokenAuth bool
	}{{"htpasswd", false}, {"token", true}} {
		t.Run("a registry with "+tt.name+" auth", func(t *testing.T) {
			reg := testbed.StartRegistry(t, testbed.RegistryOptions{User: "ci", Password: "the-real-registry-password", TokenAuth: tt.tokenAuth})
			sec := &corev1.Secret{Type: connectorsv1alpha1.SecretTypeDistributionRegistryToken, StringData: map[string]string{"username": "ci", "password": "the-real-registry-password"}}
			name := "reg-" + tt.name
			c := connectorOfClass(t, "oci", ns, name, reg.URL, sec, reg.CAPEM, "http://"+e.addr)
			dir := e.mount(t, "oci", "registry-config", c, "http://"+e.addr, tok)
			env := []string{"DOCKER_CONFIG=" + dir}
			image := e.addr + "/namespaces/" + ns + "/connectors/" + name + "/team/app"
			run := func(args ...string) string {
				return testbed.Run(t, env, "", crane, append([]string{"--insecure"}, args...)...)
			}

			out := run("append", "-f", layer, "-t", image+":v1")
			digest := strings.TrimSpace(run("digest", image+":v1"))
			if !strings.HasPrefix(digest, "sha256:") {
				t.Fatalf("crane digest: %q\n%s", digest, out)
			}
			out += run("tag", image+":v1", "v2")
			if tags := run("ls", image); !strings.Contains(tags, "v1") || !strings.Contains(tags, "v2") {
				t.Errorf("crane ls: %q", tags)
			}
			exported := filepath.Join(t.TempDir(), "fs.tar")
			out += run("export", image+"@"+digest, exported)
			fs := testbed.Run(t, nil, "", "tar", "-xOf", exported, "hello.txt")
			if fs != "hello from the registry\n" {
				t.Errorf("the pulled image's hello.txt is %q", fs)
			}
			if got := reg.Status(t, "/v2/team/app/tags/list", "", ""); got != 401 {
				t.Errorf("the registry answered %d to an anonymous tags list, want 401", got)
			}
			n, scopes := reg.TokensIssued()
			t.Logf("the token service issued %d tokens: %v", n, scopes)
			if tt.tokenAuth && (n == 0 || !strings.Contains(strings.Join(scopes, " "), "repository:team/app:pull,push")) {
				t.Errorf("the token service issued %d tokens for %v, want the push scope of team/app", n, scopes)
			}
			if strings.Contains(out, "the-real-registry-password") || strings.Contains(out, string(tok)) {
				t.Errorf("crane's output holds a secret")
			}
		})
	}

	t.Run("a password the token service refuses is a 502 that says so", func(t *testing.T) {
		reg := testbed.StartRegistry(t, testbed.RegistryOptions{User: "ci", Password: "the-real-registry-password", TokenAuth: true})
		sec := &corev1.Secret{Type: connectorsv1alpha1.SecretTypeDistributionRegistryToken, StringData: map[string]string{"username": "ci", "password": "a-wrong-password"}}
		connectorOfClass(t, "oci", ns, "reg-wrong", reg.URL, sec, reg.CAPEM, "http://"+e.addr)
		status, body, _ := reverseGet(t, e, e.addr, "/v2/namespaces/"+ns+"/connectors/reg-wrong/team/app/tags/list", bearer(string(tok)))
		if status != 502 || !strings.Contains(body, "registry login") || !strings.Contains(body, "401") {
			t.Errorf("got %d %q, want 502 naming the registry login and the token service's 401", status, body)
		}
		if strings.Contains(body, "a-wrong-password") {
			t.Error("the answer quotes the password")
		}
	})

	t.Run("the registry ping asks for the pod token, then takes it", func(t *testing.T) {
		status, _, h := reverseGet(t, e, e.addr, "/v2/", nil)
		if status != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") || h.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Errorf("without a token: %d, challenge %q", status, h.Get("WWW-Authenticate"))
		}
		if status, body, _ := reverseGet(t, e, e.addr, "/v2/", bearer(string(tok))); status != 200 {
			t.Errorf("with the pod token: %d %q", status, body)
		}
		if status, _, _ := reverseGet(t, e, e.addr, "/v2/", bearer("not-a-token")); status != 401 {
			t.Errorf("with a bad token: %d, want 401", status)
		}
	})
}
