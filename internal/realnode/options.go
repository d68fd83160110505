package realnode

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Network of the node.
const (
	// DefaultNodeIP is the node's address inside its namespace.
	DefaultNodeIP = "10.200.0.2"
	// ServiceCIDR holds the ClusterIPs; 10.96.0.1 is the kubernetes Service.
	ServiceCIDR = "10.96.0.0/16"
	// PodCIDR holds the pods' addresses (CNI bridge cni0, 10.88.0.1).
	PodCIDR = "10.88.0.0/16"
	// ClusterDomain is the cluster's DNS domain.
	ClusterDomain = "cluster.local"
	// APIServerPort is the API server's port on the node (and on the
	// namespace's loopback).
	APIServerPort = 6443
)

// DefaultDir is the default of Options.Dir.
const DefaultDir = "/var/lib/connectors-realnode"

// checkDir refuses a state directory another user could have planted or
// could write into: as root, Up runs and signals what it finds there.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("realnode: the state directory %s is not a directory", dir)
	case !ok || st.Uid != 0:
		return fmt.Errorf("realnode: the state directory %s is not owned by root", dir)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("realnode: the state directory %s is writable by others (mode %o)", dir, fi.Mode().Perm())
	}
	return nil
}

// Options configure a node.
type Options struct {
	// Dir holds all state; it must be root's and not writable by others (Up
	// creates it with mode 0700). Default /var/lib/connectors-realnode.
	Dir string
	// NodeBins holds kubelet, kube-controller-manager, kube-scheduler,
	// kube-proxy, crictl, coredns, pause and static/ kubectls
	// (hack/node-bins.sh, `make node-bins`). Required.
	NodeBins string
	// TestBins holds etcd, kube-apiserver and kubectl (hack/test-bins.sh,
	// `make test-bins`). Required.
	TestBins string
	// Name of the node. Default "realnode".
	Name string
	// NodeIP is the node's address. Default DefaultNodeIP.
	NodeIP string
	// Containerd2 runs containerd v2 and runc from NodeBins/containerd2
	// (CONNECTORS_CONTAINERD=2 hack/node-bins.sh) instead of Debian's
	// containerd 1.6 and runc (kubelet 1.38 needs containerd 2).
	Containerd2 bool
	// Log receives one line per step. Default: discard.
	Log io.Writer
}

func (o *Options) defaults() error {
	if o.NodeBins == "" || o.TestBins == "" {
		return errors.New("realnode: Options.NodeBins and .TestBins are required")
	}
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	// Paths as /proc and mountinfo show them: resolved.
	for _, p := range []*string{&o.Dir, &o.NodeBins, &o.TestBins} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("realnode: %w", err)
		}
		if resolved, err := filepath.EvalSymlinks(abs); err == nil {
			abs = resolved
		}
		*p = abs
	}
	if o.Name == "" {
		o.Name = "realnode"
	}
	if o.NodeIP == "" {
		o.NodeIP = DefaultNodeIP
	}
	if ip := net.ParseIP(o.NodeIP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("realnode: Options.NodeIP %q is not an IPv4 address", o.NodeIP)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Check returns an error naming what is missing to run a node here (and the
// package or make target that provides it), or nil.
func Check(o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("realnode: a real node needs root (network namespaces, mounts, cgroups)")
	}
	if err := checkDir(o.Dir); err != nil {
		return err
	}
	var missing []error
	need := func(path, from string) {
		if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, fmt.Errorf("%s is missing: %s", path, from))
		}
	}
	for _, b := range []string{"kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "crictl", "coredns", "pause", "static/kubectl-v1.30.1"} {
		need(filepath.Join(o.NodeBins, b), "run `make node-bins`")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
		need(filepath.Join(o.TestBins, b), "run `make test-bins`")
	}
	if o.Containerd2 {
		for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc"} {
			need(filepath.Join(o.NodeBins, "containerd2", b), "run `CONNECTORS_CONTAINERD=2 make node-bins`")
		}
	} else {
		need("/usr/bin/containerd", "apt-get install -y containerd")
		need("/usr/bin/containerd-shim-runc-v2", "apt-get install -y containerd")
		need("/usr/bin/ctr", "apt-get install -y containerd")
		if _, err := exec.LookPath("runc"); err != nil {
			missing = append(missing, errors.New("runc is missing: apt-get install -y runc"))
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		need(filepath.Join("/usr/lib/cni", p), "apt-get install -y containernetworking-plugins")
	}
	need("/bin/busybox", "apt-get install -y busybox-static (the test images' shell)")
	for _, c := range []struct{ name, pkg string }{{"iptables", "iptables"}, {"unshare", "util-linux"}, {"nsenter", "util-linux"}, {"ip", "iproute2"}} {
		if _, err := exec.LookPath(c.name); err != nil {
			missing = append(missing, fmt.Errorf("%s is missing: apt-get install -y %s", c.name, c.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("realnode: cannot run a node here: %w", errors.Join(missing...))
	}
	return nil
}
