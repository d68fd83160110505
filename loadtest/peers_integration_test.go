//go:build integration

package loadtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The peers are real nginx and squid from Debian's packages (.ci/run
// installs them): generated, started, measured through and stopped.
func TestNginxAndSquidAreGeneratedStartedAndInjectTheToken(t *testing.T) {
	for bin, pkg := range map[string]string{"nginx": NginxPackage, "squid": SquidPackage} {
		if _, err := exec.LookPath(bin); err != nil {
			if _, err := exec.LookPath("/usr/sbin/" + bin); err != nil {
				t.Fatalf("%s is not installed: apt-get install %s (.ci/run does)", bin, pkg)
			}
		}
	}
	dir := t.TempDir()
	// squid's workers run as "proxy": they must reach the peer directory.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeUpstream(ctx, dir+"/up", "127.0.0.1:0", 50*time.Millisecond, &testWriter{t}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the upstream: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := ReadUpstream(dir + "/up"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upstream wrote no files in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	base := Options{Duration: 400 * time.Millisecond, Streams: 20, ExecBytes: 1 << 20, ListSize: 5_000_000}
	cases := DefaultCases(Scenarios, base, false)
	results, err := RunBench(t.Context(), BenchOptions{
		UpstreamDir: dir + "/up", Targets: []string{"direct", "nginx", "squid"}, Cases: cases, Rounds: 1, PeerDir: dir + "/peers",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		// The upstream answers 401 without its token: every op that passed
		// carried it, added by the peer (the client sends none).
		if r.Ops == 0 || r.Errors != 0 {
			t.Errorf("%s against %s: %d ops, %d errors %v", r.Case, r.Target, r.Ops, r.Errors, r.ErrorKinds)
		}
		if r.Target != "direct" && (r.CPUSeconds <= 0 || r.PeakRSSMiB <= 0) {
			t.Errorf("%s against %s: no CPU or memory figures of the peer (%+v)", r.Case, r.Target, r)
		}
	}
	if out, _ := exec.CommandContext(t.Context(), "pgrep", "-f", dir).Output(); len(out) > 0 {
		t.Errorf("peers still run after the bench: %s", out)
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
