package realnode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestAStateDirectoryOthersCouldWriteIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("realnode runs as root; run the tests as root (make test)")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := checkDir(dir); err != nil {
		t.Errorf("a missing directory (Up creates it): %v", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkDir(dir); err != nil {
		t.Errorf("root's private directory: %v", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := checkDir(dir); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("mode 0777: err = %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := checkDir(dir); err == nil || !strings.Contains(err.Error(), "not owned by root") {
		t.Errorf("owned by nobody: err = %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	if err := checkDir(link); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a symbolic link: err = %v", err)
	}
}

func TestAPidFileNamesItsProcessOnlyWhileThatProcessRuns(t *testing.T) {
	n := &Node{opts: Options{Dir: t.TempDir()}}
	if err := os.MkdirAll(n.path("run", "pids"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	started, err := startTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	write := func(content string) {
		if err := os.WriteFile(n.path("run", "pids", "d"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("%d %d\n", pid, started))
	if got, ok := n.pid("d"); !ok || got != pid {
		t.Errorf("pid = %d, %v; want %d", got, ok, pid)
	}
	write(fmt.Sprintf("%d %d\n", pid, started+1)) // the pid reused by another process
	if _, ok := n.pid("d"); ok {
		t.Error("a pid file with another start time names the process")
	}
	write(fmt.Sprintf("%d\n", pid)) // the old format, or a planted file
	if _, ok := n.pid("d"); ok {
		t.Error("a pid file without a start time names the process")
	}
	write(fmt.Sprintf("%d %d\n", pid, started))
	n.stop("d", 15)
	if alive(pid) {
		t.Error("stop left the process running")
	}
	if _, err := os.Stat(n.path("run", "pids", "d")); !os.IsNotExist(err) {
		t.Errorf("stop kept the pid file of an ended process: %v", err)
	}
}

func TestOnlyTheTestBedProcessesStartedForTheNodeCountAsItsOwn(t *testing.T) {
	dir := t.TempDir()
	bins := filepath.Join(dir, "bins")
	if err := os.Mkdir(bins, 0o755); err != nil {
		t.Fatal(err)
	}
	shell, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	// A copy of sh stands in for the test bed's etcd (it waits for a sleep,
	// its last argument its $0).
	etcd := filepath.Join(bins, "etcd")
	b, err := os.ReadFile(shell)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(etcd, b, 0o755); err != nil {
		t.Fatal(err)
	}
	n := &Node{opts: Options{Dir: filepath.Join(dir, "node"), TestBins: bins, NodeBins: filepath.Join(dir, "node-bins")}}
	start := func(arg string) *exec.Cmd {
		cmd := exec.CommandContext(t.Context(), etcd, "-c", "sleep 30; :", arg)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	envtest := start("--data-dir=" + n.opts.Dir + "-other/etcd") // a sibling directory with the same prefix
	mine := start("--data-dir=" + n.opts.Dir + "/var/lib/etcd")
	got := strings.Join(n.processes(), ",")
	if !strings.Contains(got, fmt.Sprintf("etcd (pid %d)", mine.Process.Pid)) {
		t.Errorf("processes %q lack the node's etcd", got)
	}
	if strings.Contains(got, fmt.Sprintf("(pid %d)", envtest.Process.Pid)) {
		t.Errorf("processes %q hold an etcd of another test", got)
	}
}
