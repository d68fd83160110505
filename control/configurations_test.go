//go:build integration

package control_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

func TestTheConfigurationsAPIRendersForTheCallersServiceAccount(t *testing.T) {
	ns, other := namespace(t, "config"), namespace(t, "config")
	applyQuickstart(t, ns)
	cp.CreateServiceAccount(t, ns, "ci")
	cp.CreateServiceAccount(t, other, "stranger")
	srv := serverless(t, nil)
	proxyTokens, err := tokens.NewReviewer(cp.Clientset, []string{tokens.DefaultAudience})
	if err != nil {
		t.Fatal(err)
	}
	ciToken, _ := cp.RequestToken(t, ns, "ci", testbed.TokenOptions{})
	strangerToken, _ := cp.RequestToken(t, other, "stranger", testbed.TokenOptions{})
	captured.Secret(ciToken)
	captured.Secret(strangerToken)
	path := "/v1/namespaces/" + ns + "/connectors/k8s-connector/configurations/"

	get := func(t *testing.T, p, bearer string) (int, string, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), body
	}

	t.Run("the JSON answer holds every file, with a proxy token of the caller", func(t *testing.T) {
		code, ctype, body := get(t, path+"kubeconfig", ciToken)
		if code != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
			t.Fatalf("status %d, content type %s", code, ctype)
		}
		var resp control.ConfigurationResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		for n, c := range resp.Files {
			files[n] = c
		}
		captured.Rendered(files)
		for _, n := range []string{"kubeconfig", "context.token", "ca.crt", ".env"} {
			if _, ok := resp.Files[n]; !ok {
				t.Errorf("no file %s", n)
			}
		}
		id, err := proxyTokens.Review(t.Context(), tokens.Token(resp.Files["context.token"]))
		if err != nil {
			t.Fatalf("context.token is not a valid proxy token: %v", err)
		}
		if id.Namespace != ns || id.ServiceAccountName != "ci" {
			t.Errorf("the proxy token speaks for %s, want %s/ci", id, ns)
		}
	})

	t.Run("the file parameter answers the kubeconfig as text", func(t *testing.T) {
		code, ctype, body := get(t, path+"kubeconfig?file=kubeconfig", ciToken)
		captured.Rendered(map[string]string{"kubeconfig": string(body)})
		if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
			t.Fatalf("status %d, content type %s", code, ctype)
		}
		cfg, err := clientcmd.Load(body)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Clusters["k8s"].Server != "https://192.168.1.100:6443" {
			t.Error("the kubeconfig does not point at the connector's address")
		}
	})

	t.Run("the kubeconfig client fetches the file", func(t *testing.T) {
		b, err := control.Fetch(t.Context(), control.FetchOptions{ControlURL: srv.URL, Namespace: ns, Connector: "k8s-connector", Token: tokens.Token(ciToken)})
		if err != nil {
			t.Fatal(err)
		}
		captured.Rendered(map[string]string{"kubeconfig": string(b)})
		cfg, err := clientcmd.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(cfg.Clusters["k8s"].ProxyURL)
		if err != nil {
			t.Fatal("proxy-url does not parse")
		}
		if u.User.Username() != ns+"/k8s-connector" {
			t.Errorf("proxy user = %q", u.User.Username())
		}
	})

	t.Run("the kubeconfig client reports the server's error", func(t *testing.T) {
		_, err := control.Fetch(t.Context(), control.FetchOptions{ControlURL: srv.URL, Namespace: ns, Connector: "nope", Token: tokens.Token(ciToken)})
		if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "connector nope not found in namespace "+ns) {
			t.Errorf("err = %v, want the 404 and its message", err)
		}
	})

	for _, tc := range []struct {
		name   string
		path   string
		bearer string
		want   int
		text   string
	}{
		{name: "a caller without token is unauthorized", path: path + "kubeconfig", want: http.StatusUnauthorized, text: "Bearer"},
		{name: "a caller with a bad token is unauthorized", path: path + "kubeconfig", bearer: "not-a-token", want: http.StatusUnauthorized, text: "not valid"},
		{name: "a user who is not a ServiceAccount is forbidden", path: path + "kubeconfig", bearer: cp.UserToken, want: http.StatusForbidden, text: "only ServiceAccounts"},
		{name: "a ServiceAccount of another namespace without RBAC is forbidden", path: path + "kubeconfig", bearer: strangerToken, want: http.StatusForbidden, text: "may not use connector k8s-connector"},
		{name: "an unknown configuration is not found", path: path + "helmconfig", bearer: ciToken, want: http.StatusNotFound, text: "helmconfig"},
		{name: "an unknown file is not found", path: path + "kubeconfig?file=nope", bearer: ciToken, want: http.StatusNotFound, text: "has no file nope"},
		{name: "an unknown connector is not found", path: "/v1/namespaces/" + ns + "/connectors/nope/configurations/kubeconfig", bearer: ciToken, want: http.StatusNotFound, text: "connector nope not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := get(t, tc.path, tc.bearer)
			if code != tc.want {
				t.Fatalf("status = %d (%s), want %d", code, body, tc.want)
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tc.text) {
				t.Errorf("body %s does not say %q", body, tc.text)
			}
		})
	}
}

func TestTheConfigurationsAPIProtectsItsTokens(t *testing.T) {
	ns := namespace(t, "config")
	applyQuickstart(t, ns)
	cp.CreateServiceAccount(t, ns, "ci")
	ciToken, _ := cp.RequestToken(t, ns, "ci", testbed.TokenOptions{})
	// A minter on an address where nothing listens: minting fails (503).
	unreachable, err := kubernetes.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deadMinter, err := tokens.NewMinter(tokens.MinterOptions{Client: unreachable})
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(srv *httptest.Server, file string) error {
		_, err := control.Fetch(t.Context(), control.FetchOptions{ControlURL: srv.URL, Namespace: ns, Connector: "k8s-connector", File: file, Token: tokens.Token(ciToken)})
		return err
	}
	t.Run("a caller above its rate gets 429", func(t *testing.T) {
		srv := serverless(t, func(o *control.Options) { o.Rate, o.Burst = 0.001, 2 })
		for i := range 3 {
			err := fetch(srv, "")
			if i < 2 && err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
			if i == 2 && (err == nil || !strings.Contains(err.Error(), "429")) {
				t.Fatalf("request 3: %v, want 429", err)
			}
		}
	})
	t.Run("an unknown file is refused before a token is minted", func(t *testing.T) {
		srv := serverless(t, func(o *control.Options) { o.Minter = deadMinter })
		if err := fetch(srv, "nope"); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "has no file nope") {
			t.Errorf("err = %v, want 404 without minting", err)
		}
	})
	t.Run("a plain http control URL to another host is refused", func(t *testing.T) {
		_, err := control.Fetch(t.Context(), control.FetchOptions{ControlURL: "http://connectors-control.example.com", Namespace: ns, Connector: "k8s-connector", Token: tokens.Token(ciToken)})
		if err == nil || !strings.Contains(err.Error(), "must be https") {
			t.Errorf("err = %v, want a refusal of plain http", err)
		}
	})
}

func TestAFetchedConfigurationIsWrittenPrivately(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		existing os.FileMode // 0: no file before
	}{
		{name: "a new file is created with mode 0600"},
		{name: "an existing world-readable file is replaced by one with mode 0600", existing: 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.existing != 0 {
				if err := os.WriteFile(path, []byte("old"), tc.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := control.WritePrivateFile(path, []byte("new")); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode = %o, want 600", fi.Mode().Perm())
			}
			if b, _ := os.ReadFile(path); string(b) != "new" {
				t.Errorf("content = %q, want new", b)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}
