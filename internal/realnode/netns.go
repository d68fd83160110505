package realnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netns is the node's network namespace, kept alive by a bind mount of its
// nsfs on file.
type netns struct {
	file string
}

// exists reports whether file is a live namespace.
func (n netns) exists() bool {
	var fs unix.Statfs_t
	return unix.Statfs(n.file, &fs) == nil && fs.Type == unix.NSFS_MAGIC
}

// create makes the namespace (unshare --net=FILE binds the new
// namespace's nsfs on FILE, which must exist).
func (n netns) create(ctx context.Context) error {
	if n.exists() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(n.file), 0o700); err != nil {
		return fmt.Errorf("realnode: netns: %w", err)
	}
	if err := os.WriteFile(n.file, nil, 0o600); err != nil {
		return fmt.Errorf("realnode: netns: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "unshare", "--net="+n.file, "true").CombinedOutput(); err != nil {
		return fmt.Errorf("realnode: create the network namespace: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// remove destroys the namespace with its links, routes and iptables rules
// (once no process is left in it).
func (n netns) remove() error {
	if n.exists() {
		if err := unix.Unmount(n.file, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("realnode: unmount %s: %w", n.file, err)
		}
	}
	if err := os.Remove(n.file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("realnode: %w", err)
	}
	return nil
}

// command runs name inside the namespace (network namespace only).
func (n netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.file, "--", name}, args...)...)
}

// run runs a command inside and returns its error with its output.
func (n netns) run(ctx context.Context, name string, args ...string) error {
	if out, err := n.command(ctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("realnode: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// do runs fn on an OS thread that has entered the namespace; the sockets fn
// opens belong to it and keep working afterwards. The thread returns to
// the process's namespace, or, if it cannot, ends with the goroutine.
func (n netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("realnode: %w", err)
			return
		}
		defer func() { _ = orig.Close() }()
		target, err := os.Open(n.file)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("realnode: %w", err)
			return
		}
		defer func() { _ = target.Close() }()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("realnode: enter the network namespace: %w", err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // else the locked thread ends with this goroutine
		}
		errc <- err
	}()
	return <-errc
}

// dial opens a connection from inside the namespace (addresses as the node
// sees them: 127.0.0.1:6443 is its API server).
func (n netns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
