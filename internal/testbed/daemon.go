package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// daemon is a server process a test started (verdaccio, the registry): its
// output goes to a log file in its directory; it is killed when the test
// ends.
type daemon struct {
	name, log string
	exited    chan struct{}
}

// startDaemon starts bin with args, PATH and HOME=dir only.
func startDaemon(tb testing.TB, name, dir, bin string, args ...string) *daemon {
	tb.Helper()
	d := &daemon{name: name, log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(d.log)
	if err != nil {
		tb.Fatal(err)
	}
	// Killed when the test ends (its context ends before its cleanups run).
	cmd := exec.CommandContext(tb.Context(), bin, args...) //nolint:gosec // the test's own server
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		tb.Fatalf("testbed: start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
		}
		_ = logFile.Close()
	})
	return d
}

// waitReady polls ready until it says yes, and fails the test with the
// daemon's log if it exits first or timeout passes.
func (d *daemon) waitReady(tb testing.TB, timeout time.Duration, what string, ready func() (bool, error)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := ready()
		if ok {
			return
		}
		select {
		case <-d.exited:
			out, _ := os.ReadFile(d.log)
			tb.Fatalf("testbed: %s exited before it answered %s:\n%s", d.name, what, out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(d.log)
			tb.Fatalf("testbed: %s did not answer %s within %s (last error %v):\n%s", d.name, what, timeout, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tlsGet sends GET url, trusting caPEM, with the Authorization (none if
// ""), and returns the status.
func tlsGet(tb testing.TB, caPEM []byte, url, authorization string) (int, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// basicAuthorization is the Basic Authorization of user and pass, "" for
// no user.
func basicAuthorization(user, pass string) string {
	if user == "" {
		return ""
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// allCarry says whether every recorded Authorization is the Basic one of
// user and pass.
func allCarry(auths []string, user, pass string) bool {
	want := basicAuthorization(user, pass)
	for _, a := range auths {
		if a != want {
			return false
		}
	}
	return true
}
