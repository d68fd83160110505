package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // verdaccio's htpasswd {SHA} format, for a test user
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Verdaccio is a real npm registry (verdaccio, installed by `make
// tool-bins`) over TLS on loopback (named localhost: npm checks an IP
// literal registry against the name localhost), whose packages only an
// authenticated user may read or publish.
type Verdaccio struct {
	// URL is the registry's root, with a trailing slash.
	URL string
	// CAPEM is its (self-signed) certificate.
	CAPEM []byte
	// Storage holds the published packages.
	Storage string
}

// VerdaccioPath returns verdaccio's executable, or fails the test naming
// the make target that installs it.
func VerdaccioPath(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(RepoRoot(), "bin", "tools", "verdaccio", "node_modules", ".bin", "verdaccio")
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		tb.Fatalf("testbed: verdaccio is missing from %s: run `make tool-bins` (installs it once from the npm registry, about 30 seconds; needs nodejs and npm)", path)
	}
	if _, err := exec.LookPath("node"); err != nil {
		tb.Fatal("testbed: node is missing: install the Debian packages nodejs and npm (.ci/run does)")
	}
	return path
}

// StartVerdaccio starts a Verdaccio with one user until the test ends.
func StartVerdaccio(tb testing.TB, user, pass string) *Verdaccio {
	tb.Helper()
	bin := VerdaccioPath(tb)
	dir := tb.TempDir()
	certPEM, keyPEM := loopbackCert(tb)
	sum := sha1.Sum([]byte(pass)) //nolint:gosec // the test user's htpasswd entry
	files := map[string][]byte{
		"cert.pem": certPEM, "key.pem": keyPEM,
		"htpasswd": fmt.Appendf(nil, "%s:{SHA}%s\n", user, base64.StdEncoding.EncodeToString(sum[:])),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	port := freePort(tb)
	v := &Verdaccio{URL: "https://localhost:" + strconv.Itoa(port) + "/", CAPEM: certPEM, Storage: filepath.Join(dir, "storage")}
	config := fmt.Sprintf(`storage: %[1]s/storage
auth:
  htpasswd:
    file: %[1]s/htpasswd
    max_users: -1
uplinks: {}
packages:
  '**':
    access: $authenticated
    publish: $authenticated
    unpublish: $authenticated
listen: https://127.0.0.1:%[2]d
https:
  key: %[1]s/key.pem
  cert: %[1]s/cert.pem
web:
  enable: false
log: {type: stdout, format: pretty, level: warn}
`, dir, port)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	d := startDaemon(tb, "verdaccio", dir, bin, "--config", filepath.Join(dir, "config.yaml"))
	d.waitReady(tb, time.Minute, v.URL+"-/ping", func() (bool, error) {
		status, err := tlsGet(tb, certPEM, v.URL+"-/ping", "")
		return status == http.StatusOK, err
	})
	return v
}

// Get sends GET <URL><path> with the Basic credential (none if user is
// "") and returns the status.
func (v *Verdaccio) Get(tb testing.TB, path, user, pass string) int {
	tb.Helper()
	status, err := tlsGet(tb, v.CAPEM, v.URL+path, basicAuthorization(user, pass))
	if err != nil {
		tb.Fatalf("testbed: GET %s: %v", path, err)
	}
	return status
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := (&net.ListenConfig{}).Listen(tb.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// serveLocalhostTLS starts the unstarted srv over TLS with the certificate
// (PEM) until the test ends, without its error log, and returns
// https://localhost:<port>.
func serveLocalhostTLS(tb testing.TB, srv *httptest.Server, certPEM, keyPEM []byte) string {
	tb.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return "https://localhost:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
}

// loopbackCert returns a self-signed certificate for 127.0.0.1 and
// localhost (valid for a day) and its key, in PEM.
func loopbackCert(tb testing.TB) (certPEM, keyPEM []byte) {
	tb.Helper()
	return selfSignedCert(tb, []net.IP{net.IPv4(127, 0, 0, 1)}, "localhost")
}

// selfSignedCert returns a self-signed certificate for ips and names
// (valid for a day) and its key, in PEM.
func selfSignedCert(tb testing.TB, ips []net.IP, names ...string) (certPEM, keyPEM []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: ips[0].String()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: ips, DNSNames: names,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
