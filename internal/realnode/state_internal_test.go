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
