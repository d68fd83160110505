package realnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Node is a real single-node cluster. Build it with New; Up starts it (or
// what of it is not running), Down stops it and cleans the host.
type Node struct {
	opts   Options
	nodeIP net.IP
	ns     netns
}

// New checks opts and fills defaults. It starts nothing.
func New(opts Options) (*Node, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	return &Node{opts: opts, nodeIP: net.ParseIP(opts.NodeIP).To4(), ns: netns{file: filepath.Join(opts.Dir, "run", "netns", "realnode")}}, nil
}

// Dir is the state directory.
func (n *Node) Dir() string { return n.opts.Dir }

// Name is the node's name.
func (n *Node) Name() string { return n.opts.Name }

// NodeIP is the node's address inside its namespace.
func (n *Node) NodeIP() string { return n.opts.NodeIP }

// path joins elements under the state directory.
func (n *Node) path(elem ...string) string {
	return filepath.Join(append([]string{n.opts.Dir}, elem...)...)
}

// Kubeconfig is the admin kubeconfig (server https://127.0.0.1:6443: use it
// inside the namespace, with Command or RESTConfig).
func (n *Node) Kubeconfig() string { return n.path("etc", "admin.kubeconfig") }

// KubeletRoot is the kubelet's root directory (where CSI drivers find
// plugins/ and plugins_registry/).
func (n *Node) KubeletRoot() string { return n.kubeletRoot() }

// CA is the cluster CA certificate (PEM): the API server's and the
// kubelet's serving certificates are signed by it.
func (n *Node) CA() ([]byte, error) { return os.ReadFile(n.CAFile()) }

// CAFile is the file of CA.
func (n *Node) CAFile() string { return n.path("pki", "ca.crt") }

// LogsDir holds one log file per daemon.
func (n *Node) LogsDir() string { return n.path("logs") }

// DialContext opens a connection from inside the node's namespace.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.ns.dial(ctx, network, addr)
}

// RESTConfig is the admin REST config, dialing inside the namespace.
func (n *Node) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", n.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("realnode: %w", err)
	}
	cfg.Dial = n.DialContext
	return cfg, nil
}

// Command runs name inside the namespace with KUBECONFIG set to the admin
// kubeconfig and the node binaries on PATH (kubectl, crictl).
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := n.ns.command(ctx, name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+n.Kubeconfig(), "PATH="+n.daemonPath(),
		"CONTAINER_RUNTIME_ENDPOINT=unix://"+n.containerdSocket())
	return cmd
}

// Start runs a further daemon inside the namespace (a component under
// test), logged and stopped like the node's own: its log is
// LogsDir()/NAME.log; Stop ends it, and so does Down.
func (n *Node) Start(ctx context.Context, name string, argv ...string) error {
	if err := n.start(ctx, name, argv...); err != nil {
		return err
	}
	return n.addExtra(name)
}

// Stop ends a daemon started with Start.
func (n *Node) Stop(name string) { n.stop(name, syscall.SIGTERM) }

// Running reports whether a daemon (of the node or Start) runs.
func (n *Node) Running(name string) bool { _, ok := n.pid(name); return ok }

// daemons of the node, in start order.
var daemons = []string{"containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "coredns"}

// Up starts the node: namespace and network, configurations, containerd
// (with the images of the images/ directory), etcd, the API server, the
// controller manager and the scheduler, the kubelet and kube-proxy, and
// CoreDNS; it returns once the Node is Ready. What already runs is kept.
func (n *Node) Up(ctx context.Context) error {
	if err := Check(n.opts); err != nil {
		return err
	}
	unlock, err := n.claim(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	if err := os.MkdirAll(n.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	if err := n.ns.create(ctx); err != nil {
		return err
	}
	if err := n.setupNetwork(ctx); err != nil {
		return err
	}
	if err := n.writeConfigs(); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	if err := n.startControlPlane(ctx); err != nil {
		return err
	}
	if err := n.saveSysctls(); err != nil {
		return err
	}
	if err := n.startNodeDaemons(ctx); err != nil {
		return err
	}
	if err := n.waitNodeReady(ctx); err != nil {
		return err
	}
	n.logf("node %s Ready after %.1f s", n.opts.Name, time.Since(start).Seconds())
	return nil
}

func (n *Node) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(n.opts.Log, "%s realnode: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// setupNetwork gives the namespace its loopback and the node IP on a veth
// pair whose both ends stay inside (this kernel has no dummy links); the
// default route points at an address nobody has, so nothing leaves.
func (n *Node) setupNetwork(ctx context.Context) error {
	if err := n.ns.run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		return err
	}
	if n.ns.run(ctx, "ip", "link", "show", "rn0") == nil {
		return nil
	}
	gw := n.nodeIP.Mask(net.CIDRMask(24, 32))
	gw[3] = 1
	for _, args := range [][]string{
		{"link", "add", "rn0", "type", "veth", "peer", "name", "rn1"},
		{"addr", "add", n.opts.NodeIP + "/24", "dev", "rn0"},
		{"link", "set", "rn0", "up"},
		{"link", "set", "rn1", "up"},
		{"route", "add", "default", "via", gw.String(), "dev", "rn0", "onlink"},
	} {
		if err := n.ns.run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// ctr runs containerd's client on the node's socket.
func (n *Node) ctr(ctx context.Context, args ...string) *exec.Cmd {
	bin := "/usr/bin/ctr"
	if n.opts.Containerd2 {
		bin = filepath.Join(n.opts.NodeBins, "containerd2", "ctr")
	}
	return exec.CommandContext(ctx, bin, append([]string{"--address", n.containerdSocket()}, args...)...)
}

func (n *Node) startContainerd(ctx context.Context) error {
	if !n.Running("containerd") {
		bin := "/usr/bin/containerd"
		if n.opts.Containerd2 {
			bin = filepath.Join(n.opts.NodeBins, "containerd2", "containerd")
		}
		if err := n.start(ctx, "containerd", bin, "--config", n.path("etc", "containerd.toml")); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, "containerd", 30*time.Second, execCheck(func(ctx context.Context) *exec.Cmd { return n.ctr(ctx, "version") })); err != nil {
		return n.withLog(err, "containerd")
	}
	images, err := filepath.Glob(n.path("images", "*.tar"))
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	if len(images) == 0 {
		return fmt.Errorf("realnode: no images in %s: build them first (realnode images)", n.path("images"))
	}
	for _, img := range images {
		if err := n.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// ImportImage loads the images of a tarball (`docker save` or OCI layout,
// as make image writes) into the node's containerd, where the kubelet
// finds them without a registry.
func (n *Node) ImportImage(ctx context.Context, file string) error {
	if out, err := n.ctr(ctx, "-n", "k8s.io", "images", "import", file).CombinedOutput(); err != nil {
		return fmt.Errorf("realnode: import %s: %w: %s", file, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *Node) startControlPlane(ctx context.Context) error {
	pki := func(name string) string { return n.path("pki", name) }
	if !n.Running("etcd") {
		if err := n.start(ctx, "etcd", filepath.Join(n.opts.TestBins, "etcd"), "--name", n.opts.Name, "--data-dir", n.path("var", "lib", "etcd"),
			"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
			"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
			"--initial-cluster", n.opts.Name+"=http://127.0.0.1:2380", "--listen-metrics-urls", "http://127.0.0.1:2381",
			"--unsafe-no-fsync", "--log-level", "warn"); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, "etcd", 30*time.Second, n.httpCheck("http://127.0.0.1:2381/health", nil)); err != nil {
		return n.withLog(err, "etcd")
	}
	if !n.Running("kube-apiserver") {
		if err := n.start(ctx, "kube-apiserver", filepath.Join(n.opts.TestBins, "kube-apiserver"),
			"--etcd-servers=http://127.0.0.1:2379",
			"--bind-address=0.0.0.0", "--secure-port="+strconv.Itoa(APIServerPort), "--advertise-address="+n.opts.NodeIP,
			"--tls-cert-file="+pki("apiserver.crt"), "--tls-private-key-file="+pki("apiserver.key"),
			"--client-ca-file="+pki("ca.crt"),
			"--kubelet-client-certificate="+pki("apiserver-kubelet-client.crt"), "--kubelet-client-key="+pki("apiserver-kubelet-client.key"),
			"--kubelet-certificate-authority="+pki("ca.crt"), "--kubelet-preferred-address-types=InternalIP",
			"--service-cluster-ip-range="+ServiceCIDR,
			"--service-account-issuer=https://kubernetes.default.svc."+ClusterDomain,
			"--service-account-key-file="+pki("sa.pub"), "--service-account-signing-key-file="+pki("sa.key"),
			"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
			"--allow-privileged=true", "--profiling=false"); err != nil {
			return err
		}
	}
	cfg, err := n.RESTConfig()
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}
	if err := waitFor(ctx, "kube-apiserver", 90*time.Second, ready); err != nil {
		return n.withLog(err, "kube-apiserver")
	}
	etc := func(name string) string { return n.path("etc", name) }
	if !n.Running("kube-controller-manager") {
		if err := n.start(ctx, "kube-controller-manager", filepath.Join(n.opts.NodeBins, "kube-controller-manager"),
			"--kubeconfig="+etc("kcm.kubeconfig"), "--authentication-kubeconfig="+etc("kcm.kubeconfig"),
			"--authorization-kubeconfig="+etc("kcm.kubeconfig"),
			"--bind-address=127.0.0.1", "--leader-elect=false",
			"--service-account-private-key-file="+pki("sa.key"), "--root-ca-file="+pki("ca.crt"),
			"--use-service-account-credentials=true",
			"--cluster-signing-cert-file="+pki("ca.crt"), "--cluster-signing-key-file="+pki("ca.key"),
			"--service-cluster-ip-range="+ServiceCIDR, "--profiling=false",
			"--flex-volume-plugin-dir="+n.path("var", "lib", "kcm-flexvolume")); err != nil {
			return err
		}
	}
	if !n.Running("kube-scheduler") {
		if err := n.start(ctx, "kube-scheduler", filepath.Join(n.opts.NodeBins, "kube-scheduler"),
			"--kubeconfig="+etc("scheduler.kubeconfig"), "--authentication-kubeconfig="+etc("scheduler.kubeconfig"),
			"--authorization-kubeconfig="+etc("scheduler.kubeconfig"),
			"--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false"); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) startNodeDaemons(ctx context.Context) error {
	etc := func(name string) string { return n.path("etc", name) }
	if !n.Running("kubelet") {
		if err := n.start(ctx, "kubelet", filepath.Join(n.opts.NodeBins, "kubelet"), "--config="+etc("kubelet.yaml"),
			"--kubeconfig="+etc("kubelet.kubeconfig"), "--root-dir="+n.kubeletRoot(),
			"--hostname-override="+n.opts.Name, "--node-ip="+n.opts.NodeIP); err != nil {
			return err
		}
	}
	if !n.Running("kube-proxy") {
		if err := n.start(ctx, "kube-proxy", filepath.Join(n.opts.NodeBins, "kube-proxy"), "--config="+etc("kube-proxy.yaml")); err != nil {
			return err
		}
	}
	if !n.Running("coredns") {
		if err := n.start(ctx, "coredns", filepath.Join(n.opts.NodeBins, "coredns"), "-conf", etc("Corefile")); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) waitNodeReady(ctx context.Context) error {
	cfg, err := n.RESTConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	err = waitFor(ctx, "node "+n.opts.Name, 120*time.Second, func(ctx context.Context) error {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.opts.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("the Ready condition is %s: %s", c.Status, c.Message)
			}
		}
		return errors.New("no Ready condition yet")
	})
	if err != nil {
		return n.withLog(err, "kubelet")
	}
	return nil
}

// httpCheck GETs url from inside the namespace and expects a 2xx.
func (n *Node) httpCheck(url string, client *http.Client) func(context.Context) error {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DialContext: n.DialContext}, Timeout: 2 * time.Second}
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return nil
	}
}

// withLog adds the last lines of a daemon's log to err.
func (n *Node) withLog(err error, name string) error {
	b, rerr := os.ReadFile(n.path("logs", name+".log"))
	if rerr != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Errorf("%w; the last lines of %s:\n%s", err, n.path("logs", name+".log"), strings.Join(lines, "\n"))
}
