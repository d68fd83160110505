package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// Registry is the CNCF distribution registry (`make tool-bins`) over TLS
// on loopback, named localhost, with one user: by htpasswd (Basic on every
// request), or by the token flow of the distribution spec with a token
// service of the test's own (TokenAuth).
type Registry struct {
	// URL is https://localhost:<port>.
	URL string
	// CAPEM is the certificate of the registry and of its token service.
	CAPEM  []byte
	tokens *tokenService // with TokenAuth
}

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	User, Password string
	// TokenAuth makes the registry take only bearer tokens of its token
	// service, which takes the user's Basic credential.
	TokenAuth bool
}

// CranePath returns crane (`make tool-bins`), or fails the test naming the
// make target.
func CranePath(tb testing.TB) string {
	tb.Helper()
	return toolBin(tb, "crane")
}

func toolBin(tb testing.TB, name string) string {
	tb.Helper()
	path := filepath.Join(RepoRoot(), "bin", "tools", name, name)
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		tb.Fatalf("testbed: %s is missing from %s: run `make tool-bins` (builds it once from the Go module proxy)", name, path)
	}
	return path
}

// StartRegistry starts a Registry until the test ends.
func StartRegistry(tb testing.TB, opts RegistryOptions) *Registry {
	tb.Helper()
	bin := toolBin(tb, "registry")
	dir := tb.TempDir()
	certPEM, keyPEM := loopbackCert(tb)
	files := map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM}
	port := freePort(tb)
	r := &Registry{URL: "https://localhost:" + strconv.Itoa(port), CAPEM: certPEM}
	var auth string
	if opts.TokenAuth {
		ts := startTokenService(tb, certPEM, keyPEM, opts.User, opts.Password)
		r.tokens = ts
		files["token-root.pem"] = ts.rootPEM
		auth = fmt.Sprintf(`  token:
    realm: %s/token
    service: test-registry
    issuer: test-token-service
    rootcertbundle: %s/token-root.pem
`, ts.URL, dir)
	} else {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		files["htpasswd"] = fmt.Appendf(nil, "%s:%s\n", opts.User, hash)
		auth = fmt.Sprintf("  htpasswd:\n    realm: test-registry\n    path: %s/htpasswd\n", dir)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %[1]s/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%[2]d
  tls:
    certificate: %[1]s/cert.pem
    key: %[1]s/key.pem
auth:
%[3]s`, dir, port, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	d := startDaemon(tb, "registry", dir, bin, "serve", filepath.Join(dir, "config.yml"))
	d.waitReady(tb, 30*time.Second, "/v2/ with 401", func() (bool, error) {
		status, err := tlsGet(tb, certPEM, r.URL+"/v2/", "")
		return status == http.StatusUnauthorized, err
	})
	return r
}

// Status is the registry's answer to GET path with the Basic credential
// (none if user is "").
func (r *Registry) Status(tb testing.TB, path, user, pass string) int {
	tb.Helper()
	status, err := tlsGet(tb, r.CAPEM, r.URL+path, basicAuthorization(user, pass))
	if err != nil {
		tb.Fatalf("testbed: GET %s: %v", path, err)
	}
	return status
}

// TokensIssued is how many tokens the token service issued (0 without
// TokenAuth), and the scopes asked for.
func (r *Registry) TokensIssued() (int, []string) {
	if r.tokens == nil {
		return 0, nil
	}
	r.tokens.mu.Lock()
	defer r.tokens.mu.Unlock()
	return len(r.tokens.scopes), append([]string(nil), r.tokens.scopes...)
}

// tokenService issues registry tokens (the distribution spec's token
// flow) to one user, for whatever scope is asked, signed by a key whose
// self-signed certificate the registry trusts and sent in x5c.
type tokenService struct {
	*httptest.Server
	rootPEM []byte
	mu      sync.Mutex
	scopes  []string
}

func startTokenService(tb testing.TB, certPEM, keyPEM []byte, user, pass string) *tokenService {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test-token-service"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	ts := &tokenService{rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		type access struct {
			Type    string   `json:"type"`
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		}
		granted := []access{}
		for _, scope := range q["scope"] {
			parts := strings.Split(scope, ":")
			if len(parts) < 3 {
				continue
			}
			granted = append(granted, access{Type: parts[0], Name: strings.Join(parts[1:len(parts)-1], ":"), Actions: strings.Split(parts[len(parts)-1], ",")})
		}
		ts.mu.Lock()
		ts.scopes = append(ts.scopes, strings.Join(q["scope"], " "))
		ts.mu.Unlock()
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": "test-token-service", "sub": user, "aud": q.Get("service"),
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"jti": strconv.FormatInt(now.UnixNano(), 36), "access": granted,
		})
		tok.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(der)}
		signed, err := tok.SignedString(key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": signed, "access_token": signed, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
	}))
	ts.URL = serveLocalhostTLS(tb, ts.Server, certPEM, keyPEM)
	return ts
}
