package realnode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Down stops the node and every daemon started with Start, removes the pods
// through the CRI, unmounts everything under the state directory, removes
// the namespace, the cgroups and fixed host paths the kubelet and runc made,
// and restores the host sysctls the kubelet rewrote. The state (PKI, etcd
// data, images) stays for the next Up; Purge removes it too.
func (n *Node) Down(ctx context.Context) error {
	unlock, err := n.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	var errs []error
	for _, name := range n.extras() {
		n.stop(name, syscall.SIGTERM)
	}
	_ = os.Remove(n.path("run", "extras"))
	for _, name := range []string{"coredns", "kube-proxy", "kube-scheduler", "kube-controller-manager", "kubelet"} {
		n.stop(name, syscall.SIGTERM)
	}
	errs = append(errs, n.restoreSysctls())
	n.removePods(ctx)
	n.stop("containerd", syscall.SIGTERM)
	n.stop("kube-apiserver", syscall.SIGTERM)
	n.stop("etcd", syscall.SIGTERM)
	// The machine-wide leftovers are this node's only when it is the
	// machine's node (or none is): never clean up under another's feet.
	mine := n.ownsMachine()
	if mine {
		killContainers() // what the CRI could not remove (containerd was gone)
	}
	errs = append(errs, n.unmountAll(), n.ns.remove())
	if mine {
		errs = append(errs, removeCgroups(), n.removeHostPaths())
		_ = os.Remove(ownerFile)
	}
	n.logf("down after %.1f s", time.Since(start).Seconds())
	return errors.Join(errs...)
}

// Purge is Down, then removes the state (the images stay).
func (n *Node) Purge(ctx context.Context) error {
	if err := n.Down(ctx); err != nil {
		return err
	}
	for _, d := range []string{"var", "run", "etc", "logs", "pki"} {
		if err := os.RemoveAll(n.path(d)); err != nil {
			return fmt.Errorf("realnode: %w", err)
		}
	}
	return nil
}

// removePods removes every pod sandbox through the CRI (containerd stops
// the containers, tears down their network, unmounts their namespaces; the
// shims end), then kills what tasks remain.
func (n *Node) removePods(ctx context.Context) {
	if _, err := os.Stat(n.containerdSocket()); err != nil || !n.Running("containerd") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_ = n.Command(ctx, "crictl", "rmp", "-fa").Run()
	out, _ := n.ctr(ctx, "-n", "k8s.io", "tasks", "ls", "-q").Output()
	tasks := strings.Fields(string(out))
	for _, t := range tasks {
		_ = n.ctr(ctx, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", t).Run()
	}
	for _, t := range tasks {
		_ = n.ctr(ctx, "-n", "k8s.io", "tasks", "delete", "-f", t).Run()
	}
}

// unmountAll unmounts (lazily, deepest first) every mount under the state
// directory: the kubelet's rshared root and volumes, overlay root
// filesystems, the pods' network namespaces and the node's own.
func (n *Node) unmountAll() error {
	mounts, err := mountsUnder(n.opts.Dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("realnode: unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("realnode: %w", err)
	}
	defer func() { _ = f.Close() }()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, s.Err()
}

// unescapeMount decodes the octal escapes of mountinfo (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownsMachine reports whether the machine's owner record names this node,
// or names none.
func (n *Node) ownsMachine() bool {
	b, err := os.ReadFile(ownerFile)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	return err == nil && strings.TrimSpace(string(b)) == n.opts.Dir
}

// killContainers kills the processes left in the kubelet's and runc's
// cgroups (containers whose runtime is gone), so that the cgroups and the
// mounts can go.
func killContainers() {
	for _, root := range cgroupDirs() {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil //nolint:nilerr // a cgroup that went meanwhile: go on
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
	time.Sleep(200 * time.Millisecond) // let the kernel reap them before rmdir
}

// cgroupDirs are the cgroups the kubelet (/kubepods) and runc (/k8s.io)
// create at the root of every hierarchy.
func cgroupDirs() []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/kubepods", "/sys/fs/cgroup/*/k8s.io", "/sys/fs/cgroup/kubepods", "/sys/fs/cgroup/k8s.io"} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

// removeCgroups removes those cgroups, leaves first (each must be empty:
// the pods are gone).
func removeCgroups() error {
	var errs []error
	for _, root := range cgroupDirs() {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("realnode: remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeHostPaths removes what the kubelet and containerd write outside the
// state directory whatever their configuration says: the log symlinks in
// /var/log/containers that point into it, the device-plugin socket,
// containerd 1.6's shim socket directory and libcni's cache, and the
// directories they leave empty.
func (n *Node) removeHostPaths() error {
	links, _ := filepath.Glob("/var/log/containers/*")
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, n.opts.Dir+"/") {
			_ = os.Remove(l)
		}
	}
	_ = os.Remove("/var/lib/kubelet/device-plugins/kubelet.sock")
	for _, d := range []string{"/var/lib/kubelet/device-plugins", "/var/lib/kubelet", "/var/log/containers",
		"/run/containerd/s", "/run/containerd", "/var/lib/cni/results", "/var/lib/cni"} {
		_ = unix.Rmdir(d) // only when empty
	}
	return nil
}
