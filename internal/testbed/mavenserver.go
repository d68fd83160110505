package testbed

import (
	"crypto/md5"  //nolint:gosec // Maven's .md5 checksum files
	"crypto/sha1" //nolint:gosec // Maven's .sha1 checksum files
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// MavenRepo is a Maven repository layout over TLS, named localhost, that
// demands one user's Basic credential on every path under /repository/:
// each artifact file with its .sha1 and .md5. It records the
// Authorization of every request.
type MavenRepo struct {
	*httptest.Server
	// URL is https://localhost:<port>/repository (Nexus's shape).
	URL string
	// CAPEM is the server's (self-signed) certificate.
	CAPEM      []byte
	user, pass string
	mu         sync.Mutex
	files      map[string][]byte // path under /repository/ → content
	dir        string            // ServeDir's
	auths      []string
	paths      []string
}

// StartMavenRepo starts a MavenRepo until the test ends.
func StartMavenRepo(tb testing.TB, user, pass string) *MavenRepo {
	tb.Helper()
	certPEM, keyPEM := loopbackCert(tb)
	m := &MavenRepo{CAPEM: certPEM, user: user, pass: pass, files: map[string][]byte{}}
	m.Server = httptest.NewUnstartedServer(http.HandlerFunc(m.serve))
	m.URL = serveLocalhostTLS(tb, m.Server, certPEM, keyPEM) + "/repository"
	return m
}

func (m *MavenRepo) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.auths = append(m.auths, r.Header.Get("Authorization"))
	m.paths = append(m.paths, r.URL.Path)
	if u, p, ok := r.BasicAuth(); !ok || u != m.user || p != m.pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="maven"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/repository/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if path == "" {
		_, _ = fmt.Fprintf(w, "<html><body>%d files</body></html>\n", len(m.files))
		return
	}
	data, ok := m.files[path]
	if !ok {
		if data, ok = m.fromDir(path); !ok {
			http.NotFound(w, r)
			return
		}
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		return
	}
	_, _ = w.Write(data)
}

// Add serves an artifact file (group com.example, artifact app, version
// 1.0, extension pom → com/example/app/1.0/app-1.0.pom) with its
// checksums.
func (m *MavenRepo) Add(group, artifact, version, ext string, data []byte) {
	m.AddIn("", group, artifact, version, ext, data)
}

// AddIn is Add below the path repository (Nexus's
// /repository/<repository>/...), if not "".
func (m *MavenRepo) AddIn(repository, group, artifact, version, ext string, data []byte) {
	path := fmt.Sprintf("%s/%s/%s/%s-%s.%s", strings.ReplaceAll(group, ".", "/"), artifact, version, artifact, version, ext)
	if repository != "" {
		path = repository + "/" + path
	}
	m.AddFile(path, data)
}

// ServeDir serves, besides the files added, those of a Maven repository
// directory (Debian's /usr/share/maven-repo), each with its checksums.
func (m *MavenRepo) ServeDir(dir string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dir = dir
}

// fromDir reads path (or the file whose .sha1 or .md5 it is) from the
// directory of ServeDir.
func (m *MavenRepo) fromDir(path string) ([]byte, bool) {
	if m.dir == "" || slices.Contains(strings.Split(path, "/"), "..") {
		return nil, false
	}
	base, sum := path, ""
	for _, ext := range []string{".sha1", ".md5"} {
		if b, ok := strings.CutSuffix(path, ext); ok {
			base, sum = b, ext
		}
	}
	data, err := os.ReadFile(filepath.Join(m.dir, filepath.FromSlash(base)))
	if err != nil {
		return nil, false
	}
	switch sum {
	case ".sha1":
		s := sha1.Sum(data) //nolint:gosec // Maven's checksum
		return []byte(hex.EncodeToString(s[:])), true
	case ".md5":
		s := md5.Sum(data) //nolint:gosec // Maven's checksum
		return []byte(hex.EncodeToString(s[:])), true
	}
	return data, true
}

// AddFile serves data at path (below /repository/), with its checksums.
func (m *MavenRepo) AddFile(path string, data []byte) {
	s1 := sha1.Sum(data) //nolint:gosec // Maven's checksum
	s5 := md5.Sum(data)  //nolint:gosec // Maven's checksum
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[path] = data
	m.files[path+".sha1"] = []byte(hex.EncodeToString(s1[:]))
	m.files[path+".md5"] = []byte(hex.EncodeToString(s5[:]))
}

// Requests returns the paths requested, and whether each request carried
// the server's credential.
func (m *MavenRepo) Requests() (paths []string, allCredentialed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	allCredentialed = allCarry(m.auths, m.user, m.pass)
	return append([]string(nil), m.paths...), allCredentialed
}
