package realnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemonPath is the PATH of the node's daemons: the node binaries first
// (crictl, the shim of containerd 2), then the system's (iptables in sbin).
func (n *Node) daemonPath() string {
	p := n.opts.NodeBins + ":" + n.opts.TestBins + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if n.opts.Containerd2 {
		p = filepath.Join(n.opts.NodeBins, "containerd2") + ":" + p
	}
	return p
}

// start runs a daemon inside the namespace, in a session of its own (an
// interrupt of the caller does not reach it), with its output in
// logs/NAME.log and its pid in run/pids/NAME. It outlives the caller: Down
// stops it by its pid file.
func (n *Node) start(ctx context.Context, name string, argv ...string) error {
	if err := os.MkdirAll(n.path("logs"), 0o755); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	if err := os.MkdirAll(n.path("run", "pids"), 0o755); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	if pid, ok := n.pid(name); ok {
		return fmt.Errorf("realnode: %s already runs (pid %d)", name, pid)
	}
	logf, err := os.OpenFile(n.path("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	defer func() { _ = logf.Close() }()
	// nsenter enters the namespace and execs the daemon: the pid is the
	// daemon's. The command outlives ctx on purpose.
	cmd := n.ns.command(context.WithoutCancel(ctx), argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+n.daemonPath())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("realnode: start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// The start time identifies the process: a pid file that outlived its
	// process (a reboot, a reused pid) names no other process. It does not
	// change when nsenter execs the daemon.
	started, _ := startTime(pid)
	// Reap it when it ends while this process lives; after this process
	// ends, PID 1 does.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(n.path("run", "pids", name), fmt.Appendf(nil, "%d %d\n", pid, started), 0o600); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	n.logf("%s (pid %d)", name, pid)
	return nil
}

// pid returns the daemon's pid when it runs: the pid of its pid file, if
// that process is alive and started when the file says.
func (n *Node) pid(name string) (int, bool) {
	b, err := os.ReadFile(n.path("run", "pids", name))
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, false
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || !alive(pid) {
		return 0, false
	}
	if started, err := startTime(pid); err != nil || strconv.FormatUint(started, 10) != fields[1] {
		return 0, false // another process reuses the pid
	}
	return pid, true
}

// stat returns the fields of /proc/PID/stat after the command name (which
// may hold spaces and parentheses): state first.
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return nil, fmt.Errorf("realnode: /proc/%d/stat: unexpected format", pid)
	}
	return strings.Fields(string(b[i+2:])), nil
}

// alive reports whether pid runs and is not a zombie (daemons whose parent
// ended are reaped late by PID 1).
func alive(pid int) bool {
	f, err := stat(pid)
	return err == nil && len(f) > 0 && f[0] != "Z"
}

// startTime is the process's start time in clock ticks after boot (field
// 22 of /proc/PID/stat).
func startTime(pid int) (uint64, error) {
	f, err := stat(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("realnode: /proc/%d/stat: unexpected format", pid)
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22, the 20th after the name
}

// stop signals the daemon (SIGTERM unless sig says otherwise), waits up to
// 10 s, then kills it. The pid file stays when even that fails.
func (n *Node) stop(name string, sig syscall.Signal) {
	pidFile := n.path("run", "pids", name)
	pid, ok := n.pid(name)
	if !ok {
		_ = os.Remove(pidFile)
		return
	}
	defer func() {
		if !alive(pid) {
			_ = os.Remove(pidFile)
		}
	}()
	_ = syscall.Kill(pid, sig)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	n.logf("%s did not stop within 10 s: killed", name)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); alive(pid) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls check every 200 ms until it succeeds or timeout passes;
// the error names what was awaited and the last failure, and points at the
// daemon's log.
func waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("realnode: %s not ready within %s: %w", what, timeout, errors.Join(last, ctx.Err()))
		case <-t.C:
		}
	}
}

// execCheck is a check that runs a command and expects success.
func execCheck(cmd func(ctx context.Context) *exec.Cmd) func(context.Context) error {
	return func(ctx context.Context) error {
		out, err := cmd(ctx).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
}

// execOutput runs a short local command and returns its output.
func execOutput(name string, args ...string) (string, error) {
	//nolint:noctx // a local, bounded command (busybox --list)
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}
