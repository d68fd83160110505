package testbed

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// PyPIServer is a PEP 503 simple repository over TLS that demands one
// user's Basic credential on every path: [<any prefix>]/simple/ lists the projects,
// /simple/<project>/ links each file with its sha256 by a relative URL (as
// pypiserver and Nexus do), /packages/<file> serves it. It records the
// Authorization of every request.
type PyPIServer struct {
	*httptest.Server
	user, pass string
	mu         sync.Mutex
	files      map[string][]byte   // file name → content
	projects   map[string][]string // normalized name → file names
	auths      []string
}

// StartPyPIServer starts a PyPIServer until the test ends.
func StartPyPIServer(tb testing.TB, user, pass string) *PyPIServer {
	tb.Helper()
	s := &PyPIServer{user: user, pass: pass, files: map[string][]byte{}, projects: map[string][]string{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Config.ErrorLog = nil
	s.StartTLS()
	tb.Cleanup(s.Close)
	return s
}

func (s *PyPIServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	if u, p, ok := r.BasicAuth(); !ok || u != s.user || p != s.pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="pypi"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	// The index may sit below a path (Nexus: /repository/<name>/simple/).
	path := r.URL.Path
	if i := strings.LastIndex(path, "/simple/"); i >= 0 {
		path = path[i:]
	} else if i := strings.LastIndex(path, "/packages/"); i >= 0 {
		path = path[i:]
	}
	switch {
	case path == "/simple/" || path == "/simple":
		names := make([]string, 0, len(s.projects))
		for n := range s.projects {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		b.WriteString("<!DOCTYPE html><html><body>\n")
		for _, n := range names {
			fmt.Fprintf(&b, "<a href=\"/simple/%s/\">%s</a>\n", html.EscapeString(n), html.EscapeString(n))
		}
		b.WriteString("</body></html>\n")
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(b.String()))
	case strings.HasPrefix(path, "/simple/"):
		files, ok := s.projects[normalizeProject(strings.Trim(strings.TrimPrefix(path, "/simple/"), "/"))]
		if !ok {
			http.NotFound(w, r)
			return
		}
		var b strings.Builder
		b.WriteString("<!DOCTYPE html><html><body>\n")
		for _, f := range files {
			sum := sha256.Sum256(s.files[f])
			fmt.Fprintf(&b, "<a href=\"../../packages/%s#sha256=%s\">%s</a>\n", html.EscapeString(f), hex.EncodeToString(sum[:]), html.EscapeString(f))
		}
		b.WriteString("</body></html>\n")
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(b.String()))
	case strings.HasPrefix(path, "/packages/"):
		data, ok := s.files[strings.TrimPrefix(path, "/packages/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(data)
	default:
		http.NotFound(w, r)
	}
}

var projectSeparators = regexp.MustCompile(`[-_.]+`)

// normalizeProject is PEP 503's name normalization.
func normalizeProject(name string) string {
	return strings.ToLower(projectSeparators.ReplaceAllString(name, "-"))
}

// CAPEM is the server's (self-signed) certificate.
func (s *PyPIServer) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// Requests returns how many requests came and whether each carried the
// server's credential.
func (s *PyPIServer) Requests() (n int, allCredentialed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	allCredentialed = allCarry(s.auths, s.user, s.pass)
	return len(s.auths), allCredentialed
}

// AddWheel builds a pure-Python wheel of project at version whose module
// (the project's name with underscores) defines GREETING = greeting, and
// serves it. It returns the wheel's file name.
func (s *PyPIServer) AddWheel(tb testing.TB, project, version, greeting string) string {
	tb.Helper()
	module := strings.ReplaceAll(normalizeProject(project), "-", "_")
	dist := module + "-" + version
	files := []struct{ name, body string }{
		{module + "/__init__.py", fmt.Sprintf("GREETING = %q\n", greeting)},
		{dist + ".dist-info/METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: a test package\n", project, version)},
		{dist + ".dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: connectors-testbed\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			tb.Fatal(err)
		}
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	recordName := dist + ".dist-info/RECORD"
	fmt.Fprintf(&record, "%s,,\n", recordName)
	w, err := zw.Create(recordName)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write([]byte(record.String())); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	name := dist + "-py3-none-any.whl"
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = buf.Bytes()
	key := normalizeProject(project)
	s.projects[key] = append(s.projects[key], name)
	return name
}

// Pip returns the command line of Debian's pip (python3 -m pip), or fails
// the test naming the package that provides it.
func Pip(tb testing.TB) []string {
	tb.Helper()
	for _, python := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(python)
		if err != nil {
			continue
		}
		if out, err := exec.CommandContext(tb.Context(), path, "-m", "pip", "--version").CombinedOutput(); err == nil && strings.HasPrefix(string(out), "pip ") {
			return []string{path, "-m", "pip"}
		}
	}
	tb.Fatal("testbed: pip is missing: install the Debian package python3-pip (.ci/run does)")
	return nil
}
