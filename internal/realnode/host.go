package realnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sysctls are the host-global kernel settings the kubelet rewrites
// (vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1, …);
// with protectKernelDefaults it would refuse to start instead. Up saves
// them before the kubelet starts; Down restores them.
var sysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

func readSysctls() (map[string]string, error) {
	out := make(map[string]string, len(sysctls))
	for _, k := range sysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			return nil, fmt.Errorf("realnode: read sysctl %s: %w", k, err)
		}
		out[k] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// saveSysctls records the host's values, unless a record of an earlier Up
// (whose kubelet may have changed them) is kept.
func (n *Node) saveSysctls() error {
	file := n.path("run", "sysctl.saved")
	if _, err := os.Stat(file); err == nil {
		return nil
	}
	values, err := readSysctls()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, k := range sysctls {
		fmt.Fprintf(&b, "%s %s\n", k, values[k])
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	return nil
}

// restoreSysctls writes the saved values back and removes the record.
func (n *Node) restoreSysctls() error {
	file := n.path("run", "sysctl.saved")
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	var errs []error
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("realnode: restore sysctl %s=%s: %w", k, v, err))
		}
	}
	if len(errs) == 0 {
		_ = os.Remove(file)
	}
	return errors.Join(errs...)
}

// HostState is what a node may change on the host outside its state
// directory, for a test to compare before and after.
type HostState struct {
	// Mounts under the state directory.
	Mounts []string
	// Processes whose executable is a node binary, or a containerd shim.
	Processes []string
	// Cgroups the kubelet or runc made.
	Cgroups []string
	// Links of the root network namespace.
	Links []string
	// Sysctls the kubelet rewrites, name=value.
	Sysctls []string
	// Paths are the fixed host paths the kubelet and containerd write.
	Paths []string
}

// Snapshot reads the host state.
func (n *Node) Snapshot() (HostState, error) {
	var s HostState
	var err error
	if s.Mounts, err = mountsUnder(n.opts.Dir); err != nil {
		return s, err
	}
	s.Cgroups = cgroupDirs()
	ifs, err := net.Interfaces()
	if err != nil {
		return s, fmt.Errorf("realnode: %w", err)
	}
	for _, i := range ifs {
		s.Links = append(s.Links, i.Name)
	}
	sort.Strings(s.Links)
	values, err := readSysctls()
	if err != nil {
		return s, err
	}
	for _, k := range sysctls {
		s.Sysctls = append(s.Sysctls, k+"="+values[k])
	}
	for _, p := range []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/run/containerd/s", "/var/lib/cni", "/usr/libexec/kubernetes"} {
		if _, err := os.Lstat(p); err == nil {
			s.Paths = append(s.Paths, p)
		}
	}
	s.Processes = n.processes()
	return s, nil
}

// processes lists the running processes of the node's binaries and the
// containerd shims.
func (n *Node) processes() []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		base := filepath.Base(exe)
		// etcd and kube-apiserver of the test bed also run for envtest
		// (other tests of the same run): only those started for this node,
		// whose command lines name its state directory, are its own.
		if strings.HasPrefix(exe, n.opts.TestBins+"/") && !n.startedHere(e.Name()) {
			continue
		}
		if strings.HasPrefix(exe, n.opts.NodeBins+"/") || strings.HasPrefix(exe, n.opts.TestBins+"/") ||
			base == "containerd" || strings.HasPrefix(base, "containerd-shim") {
			out = append(out, base+" (pid "+e.Name()+")")
		}
	}
	sort.Strings(out)
	return out
}

// startedHere reports whether the command line of process pid names the
// node's state directory.
func (n *Node) startedHere(pid string) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	return err == nil && strings.Contains(string(cmdline), filepath.Clean(n.opts.Dir)+"/")
}

// ownerFile records which state directory runs the machine's node.
const ownerFile = "/run/connectors-realnode.owner"

// lockFile serializes Up and Down on this machine.
const lockFile = "/run/lock/connectors-realnode.lock"

// lock takes the machine-wide lock of Up and Down (waiting at most a
// minute for another caller).
func (n *Node) lock(ctx context.Context) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(lockFile), 0o755); err != nil {
		return nil, fmt.Errorf("realnode: %w", err)
	}
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("realnode: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); _ = f.Close() }, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = f.Close()
			return nil, fmt.Errorf("realnode: another process holds %s", lockFile)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// claim takes the lock and makes this state directory the machine's node,
// unless another one runs.
func (n *Node) claim(ctx context.Context) (unlock func(), err error) {
	unlock, err = n.lock(ctx)
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(ownerFile); err == nil {
		other := strings.TrimSpace(string(b))
		if other != n.opts.Dir && otherRuns(other) {
			unlock()
			return nil, fmt.Errorf("realnode: a node already runs on this machine from %s (one node per machine: its kubelet owns /kubepods); stop it with `hack/realnode.sh down` and that directory", other)
		}
	}
	if err := os.WriteFile(ownerFile, []byte(n.opts.Dir+"\n"), 0o644); err != nil {
		unlock()
		return nil, fmt.Errorf("realnode: %w", err)
	}
	return unlock, nil
}

// otherRuns reports whether a daemon of the node of dir runs.
func otherRuns(dir string) bool {
	o := &Node{opts: Options{Dir: dir}}
	for _, d := range daemons {
		if o.Running(d) {
			return true
		}
	}
	return false
}

// extras lists the daemons started with Start.
func (n *Node) extras() []string {
	b, err := os.ReadFile(n.path("run", "extras"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

func (n *Node) addExtra(name string) error {
	for _, e := range n.extras() {
		if e == name {
			return nil
		}
	}
	f, err := os.OpenFile(n.path("run", "extras"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	defer func() { _ = f.Close() }()
	_, err = fmt.Fprintln(f, name)
	return err
}

// Status lists the node's daemons (and those started with Start) with their
// pids, 0 for those that do not run.
func (n *Node) Status() map[string]int {
	out := map[string]int{}
	for _, d := range append(append([]string{}, daemons...), n.extras()...) {
		pid, _ := n.pid(d)
		out[d] = pid
	}
	return out
}
