// Package realnode runs a real single-node Kubernetes cluster on this
// machine for tests and demos, without Docker: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet and kube-proxy v1.37.2,
// containerd + runc, the CNI bridge and CoreDNS (cluster DNS with the
// kubernetes plugin), so that pods really run, really mount
// connectors-csi, and resolve *.svc.cluster.local.
//
// Everything runs inside one private network namespace (a bind-mounted nsfs
// file under the state directory): the node IP 10.200.0.2 sits on a veth
// pair whose both ends stay in it, and the default route points at an
// address nobody has, so no traffic leaves the namespace and nothing listens
// on the host's interfaces. Daemons are entered into it with
// `nsenter --net` (never `ip netns exec`, which also gives a private mount
// namespace and a fresh /sys, so the kubelet's mounts would not reach
// containerd). Processes of the test that must reach the node (client-go)
// dial through Node.DialContext, which opens its sockets inside the
// namespace; commands run inside with Node.Command.
//
// All state is under Options.Dir. One node runs per machine (the kubelet
// owns /kubepods in every cgroup hierarchy and fixed host paths): a
// machine-wide lock and an owner record enforce it. Down leaves the host as
// it was: daemons stopped, pods removed through the CRI, mounts under Dir
// unmounted, the namespace (with its links and iptables rules) gone, the
// cgroups the kubelet and runc made removed, the fixed host paths the
// kubelet writes removed, and the host sysctls the kubelet rewrites
// (kernel.panic_on_oops among them) restored. Host.Snapshot records what a
// test compares before and after.
//
// Workarounds this kind of machine needs (docs/testbed.md): the kubelet runs
// with failCgroupV1: false (hybrid cgroups), containerd with
// restrict_oom_score_adj (the capability bounding set lacks
// CAP_SYS_RESOURCE, so nothing may lower oom_score_adj), the images are
// built locally (no registry is reachable), and the CSI driver registers
// itself with the kubelet (the registrar image cannot be pulled).
package realnode
