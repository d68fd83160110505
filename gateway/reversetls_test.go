//go:build integration

package gateway_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/internal/testbed"
)

// startGatewayWithReverseTLS runs a gateway that also serves the reverse
// proxy over TLS, with the gateway's own name host; it returns the TLS
// listener's port.
func startGatewayWithReverseTLS(t *testing.T, host string) (*env, string) {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := startGateway(t, func(o *gateway.Options) {
		o.ReverseTLSListener, o.ReverseTLSHosts = l, []string{host}
	})
	return e, l.Addr().String()[strings.LastIndex(l.Addr().String(), ":")+1:]
}

// TestGitVerifiesTheReverseProxyOverTLSWithTheMountedCACertAndNoInsecureSetting:
// with the gateway's reverse proxy over TLS, the real git clones, lists
// and pushes through the host and the path resolvers with the git class's
// .gitconfig (sslVerify true) and the mounted ca.cert as its only trust;
// the leaf is the gateway CA's for the name git dialed. Without that
// trust, git refuses the gateway's certificate.
func TestGitVerifiesTheReverseProxyOverTLSWithTheMountedCACertAndNoInsecureSetting(t *testing.T) {
	gwName := "connectors-proxy-service.connectors-test.svc.cluster.local"
	e, port := startGatewayWithReverseTLS(t, gwName)
	installClass(t, "git")
	ns := namespace(t, "gittls")
	srv := testbed.StartGitServer(t, "git-user", "the-real-git-password")
	srv.BareRepo(t, "org/app.git")
	sec := &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "git-user", "password": "the-real-git-password"}}
	address := srv.URL + "/git"
	c := connectorOfClass(t, "git", ns, "repo", address, sec, srv.CAPEM(), "https://c-repo."+ns+".svc.cluster.local")
	tok, _ := cp.PodToken(t, ns, "job", "default")

	for _, tt := range []struct{ resolver, host, proxy string }{
		{"host", "c-repo." + ns + ".svc.cluster.local", "https://c-repo." + ns + ".svc.cluster.local:" + port},
		{"path", gwName, "https://" + gwName + ":" + port + "/namespaces/" + ns + "/connectors/repo"},
	} {
		t.Run("the "+tt.resolver+" resolver", func(t *testing.T) {
			dir := e.mount(t, "git", "gitconfig", c, tt.proxy, tok)
			gitconfig, err := os.ReadFile(filepath.Join(dir, ".gitconfig"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(gitconfig), "sslVerify = true") {
				t.Fatal("the mounted .gitconfig does not say sslVerify = true")
			}
			resolve := []string{"-c", "http.curloptResolve=" + tt.host + ":" + port + ":127.0.0.1"}
			trusted := []string{"GIT_CONFIG_GLOBAL=" + filepath.Join(dir, ".gitconfig"), "GIT_SSL_CAINFO=" + filepath.Join(dir, "ca.cert")}
			before, _ := srv.Requests()

			if out, err := testbed.RunErr(t, []string{"GIT_CONFIG_GLOBAL=" + filepath.Join(dir, ".gitconfig")}, "", "git", append(resolve, "ls-remote", address+"/org/app.git")...); err == nil ||
				!strings.Contains(out, "certificate") {
				t.Fatalf("git trusted the gateway without the mounted ca.cert (%v): %s", err, out)
			}
			refs := testbed.Run(t, trusted, "", "git", append(resolve, "ls-remote", address+"/org/app.git")...)
			if !strings.Contains(refs, "refs/heads/main") {
				t.Fatalf("ls-remote: %s", refs)
			}
			clone := filepath.Join(t.TempDir(), "app")
			out := testbed.Run(t, trusted, "", "git", append(resolve, "clone", address+"/org/app.git", clone)...)
			file := "over-tls-" + tt.resolver
			if err := os.WriteFile(filepath.Join(clone, file), []byte("pushed\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			testbed.Run(t, trusted, clone, "git", "add", file)
			testbed.Run(t, trusted, clone, "git", "-c", "user.name=job", "-c", "user.email=job@example.com", "commit", "-q", "-m", "over tls "+tt.resolver)
			out += testbed.Run(t, trusted, clone, "git", append(resolve, "push", "origin", "main")...)
			if got := testbed.Run(t, nil, "", "git", "--git-dir", filepath.Join(srv.Root, "org/app.git"), "log", "--format=%s", "-1"); strings.TrimSpace(got) != "over tls "+tt.resolver {
				t.Errorf("the server's last commit is %q, want the pushed one", got)
			}
			n, credentialed := srv.Requests()
			if n-before < 4 || !credentialed {
				t.Errorf("the server got %d requests, all with the connector's credential: %v", n-before, credentialed)
			}
			if strings.Contains(refs+out, "the-real-git-password") || strings.Contains(refs+out, string(tok)) {
				t.Error("git's output holds a secret")
			}
		})
	}
}

// TestTheReverseProxyOverTLSSignsOnlyConnectorHostsAndItsOwnNamesAndServesNoForwardProxy:
// a handshake for the proxy host of a connector that exists or the
// gateway's own name gets a leaf of the gateway CA for that name; any other
// name (a public host, one that merely begins as a proxy host, one of a
// connector that does not exist) fails the handshake; CONNECT and absolute
// URIs on the TLS port are 405 with a one-line reason.
func TestTheReverseProxyOverTLSSignsOnlyConnectorHostsAndItsOwnNamesAndServesNoForwardProxy(t *testing.T) {
	e, port := startGatewayWithReverseTLS(t, "gateway.connectors.test")
	ns := namespace(t, "tlsnames")
	readyConnector(t, ns, "repo", apiserver(), "a-token", "https://c-repo."+ns+".svc.cluster.local")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.ca)
	dial := func(name string) (*tls.Conn, error) {
		d := &tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}
		conn, err := d.DialContext(t.Context(), "tcp", "127.0.0.1:"+port)
		if err != nil {
			return nil, err
		}
		return conn.(*tls.Conn), nil
	}
	for _, name := range []string{"c-repo." + ns + ".svc.cluster.local", "c-repo." + ns + ".svc", "gateway.connectors.test", "GATEWAY.connectors.test."} {
		conn, err := dial(name)
		if err != nil {
			t.Errorf("handshake for %s: %v", name, err)
			continue
		}
		if leaf := conn.ConnectionState().PeerCertificates[0]; leaf.VerifyHostname(strings.TrimSuffix(name, ".")) != nil {
			t.Errorf("the leaf for %s names %v", name, leaf.DNSNames)
		}
		_ = conn.Close()
	}
	for _, name := range []string{"github.com", "kubernetes.default.svc", "c-repo", "repo." + ns + ".svc.cluster.local", "c-repo." + ns + ".svc.github.com",
		"c-repo." + ns + ".svc.cluster.local.example.com", "c-repo." + ns, "c-made-up." + ns + ".svc.cluster.local", "c-repo.no-such-namespace.svc"} {
		if conn, err := dial(name); err == nil {
			t.Errorf("the gateway presented a leaf for %s: %v", name, conn.ConnectionState().PeerCertificates[0].DNSNames)
			_ = conn.Close()
		}
	}

	for _, req := range []string{
		"CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
	} {
		conn, err := dial("gateway.connectors.test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		_ = conn.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), "reverse proxy only") {
			t.Errorf("%q on the TLS port: %s %q", strings.Fields(req)[0], resp.Status, body)
		}
	}
}
