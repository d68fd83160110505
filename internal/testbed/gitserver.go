package testbed

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// GitServer is Debian's git http-backend behind a net/http/cgi handler
// that demands one user's Basic credential, over TLS, serving the bare
// repositories under Root at /git/. It records the Authorization of every
// request.
type GitServer struct {
	*httptest.Server
	// Root holds the bare repositories.
	Root       string
	user, pass string
	mu         sync.Mutex
	auths      []string
}

// StartGitServer starts a GitServer until the test ends.
func StartGitServer(tb testing.TB, user, pass string) *GitServer {
	tb.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		tb.Fatal("testbed: git is missing: install the Debian package git (.ci/run does)")
	}
	s := &GitServer{Root: tb.TempDir(), user: user, pass: pass}
	backend := &cgi.Handler{
		Path: gitBin, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + s.Root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + user, "GIT_CONFIG_NOSYSTEM=1", "HOME=" + s.Root},
	}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		s.mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		http.StripPrefix("/git", backend).ServeHTTP(w, r)
	}))
	s.Config.ErrorLog = nil
	s.StartTLS()
	tb.Cleanup(s.Close)
	return s
}

// CAPEM is the server's (self-signed) certificate.
func (s *GitServer) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// Requests returns how many requests came and whether each carried the
// server's credential.
func (s *GitServer) Requests() (n int, allCredentialed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	allCredentialed = allCarry(s.auths, s.user, s.pass)
	return len(s.auths), allCredentialed
}

// BareRepo creates Root/<name> with one commit on main whose README says
// "hello from the git server".
func (s *GitServer) BareRepo(tb testing.TB, name string) {
	tb.Helper()
	work := tb.TempDir()
	Run(tb, nil, work, "git", "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("hello from the git server\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	Run(tb, nil, work, "git", "add", "README")
	Run(tb, nil, work, "git", "-c", "user.name=server", "-c", "user.email=server@example.com", "commit", "-q", "-m", "first")
	Run(tb, nil, "", "git", "clone", "-q", "--bare", work, filepath.Join(s.Root, name))
}

// Run runs a command in dir with PATH, a HOME of its own, no system git
// configuration, no prompt and env; it fails the test on error and
// returns the combined output.
func Run(tb testing.TB, env []string, dir string, name string, args ...string) string {
	tb.Helper()
	out, err := RunErr(tb, env, dir, name, args...)
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr is Run returning the error (bounded by a minute).
func RunErr(tb testing.TB, env []string, dir string, name string, args ...string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
