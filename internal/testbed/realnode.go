package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/internal/localcluster"
	"github.com/connectors-io/connectors/internal/realnode"
)

// RealNode is the test bed's real single-node cluster (internal/realnode):
// a kubelet with containerd, CNI and cluster DNS in a private network
// namespace, where pods really run.
type RealNode struct {
	*realnode.Node
	// Config is an admin REST config that dials inside the namespace;
	// Client (uncached) and Clientset use it.
	Config    *rest.Config
	Client    client.Client
	Clientset kubernetes.Interface
	// Kubectl is kubectl v1.37.2 (run it with Command, inside).
	Kubectl string
}

// FindNodeBins returns the directory of the real node's binaries
// ($CONNECTORS_NODE_BINS, else bin/node/<version>), or an error naming the
// make target that builds them.
func FindNodeBins() (string, error) {
	dir := os.Getenv("CONNECTORS_NODE_BINS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin", "node", KubeVersion)
	}
	if n := localcluster.MissingBin(dir, "kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "crictl", "coredns", "pause"); n != "" {
		return "", fmt.Errorf("testbed: %s is missing from %s: run `make node-bins` (builds the real node's binaries once, about 14 minutes cold)", n, dir)
	}
	return dir, nil
}

// StartRealNode starts a real node in a state directory of its own, with
// its images built, and registers its teardown: at the end of the test the
// node is brought down and the host must be as it was before (mounts,
// processes, cgroups, links, sysctls, fixed paths), else the test fails.
// When the test failed, the last lines of every daemon's log are printed.
// A missing prerequisite fails the test with what provides it.
func StartRealNode(tb testing.TB) *RealNode {
	tb.Helper()
	nodeBins, err := FindNodeBins()
	if err != nil {
		tb.Fatal(err)
	}
	testBins := BinDir(tb)
	// Short: the kubelet's unix sockets live below it (108 bytes at most).
	dir, err := os.MkdirTemp("", "rn-")
	if err != nil {
		tb.Fatal(err)
	}
	var log bytes.Buffer
	n, err := realnode.New(realnode.Options{Dir: dir, NodeBins: nodeBins, TestBins: testBins, Log: &log,
		Containerd2: os.Getenv("CONNECTORS_CONTAINERD") == "2"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := realnode.Check(realnode.Options{Dir: dir, NodeBins: nodeBins, TestBins: testBins}); err != nil {
		tb.Fatalf("testbed: %v (.ci/run installs the packages)", err)
	}
	before, err := n.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	rn := &RealNode{Node: n, Kubectl: filepath.Join(testBins, "kubectl")}
	tb.Cleanup(func() { rn.teardown(tb, before, &log, dir) })
	if err := n.BuildImages(); err != nil {
		tb.Fatal(err)
	}
	if err := n.Up(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	if rn.Config, err = n.RESTConfig(); err != nil {
		tb.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	if err := connectorsv1alpha1.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	if rn.Client, err = client.New(rn.Config, client.Options{Scheme: scheme}); err != nil {
		tb.Fatal(err)
	}
	if rn.Clientset, err = kubernetes.NewForConfig(rn.Config); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("testbed: %s", strings.TrimSpace(log.String()))
	return rn
}

func (rn *RealNode) teardown(tb testing.TB, before realnode.HostState, log *bytes.Buffer, dir string) {
	tb.Helper()
	if tb.Failed() {
		rn.dumpLogs(tb)
	}
	//nolint:forbidigo // the test's context has ended: the teardown needs its own
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := rn.Down(ctx); err != nil {
		tb.Errorf("testbed: bring the real node down: %v", err)
	}
	after, err := rn.Snapshot()
	if err != nil {
		tb.Error(err)
	}
	for _, d := range []struct {
		what          string
		before, after []string
	}{
		{"mounts under the state directory", before.Mounts, after.Mounts},
		{"processes of the node", before.Processes, after.Processes},
		{"cgroups of the kubelet and runc", before.Cgroups, after.Cgroups},
		{"links of the host's network namespace", before.Links, after.Links},
		{"sysctls", before.Sysctls, after.Sysctls},
		{"fixed host paths", before.Paths, after.Paths},
	} {
		if !reflect.DeepEqual(d.before, d.after) {
			tb.Errorf("testbed: the real node left the host changed: %s were %v before and are %v after", d.what, d.before, d.after)
		}
	}
	if !tb.Failed() {
		_ = os.RemoveAll(dir)
	} else {
		tb.Logf("testbed: the real node's state is kept in %s; its log:\n%s", dir, log.String())
	}
}

// dumpLogs prints the last lines of every daemon's log.
func (rn *RealNode) dumpLogs(tb testing.TB) {
	tb.Helper()
	logs, _ := filepath.Glob(filepath.Join(rn.LogsDir(), "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		tb.Logf("testbed: the last lines of %s:\n%s", l, strings.Join(lines, "\n"))
	}
}

// Run runs the test bed's kubectl inside the node's namespace as admin,
// with stdin, and returns stdout (and stderr in the error).
func (rn *RealNode) Run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := rn.Command(ctx, rn.Kubectl, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// MustRun is Run that fails the test on error.
func (rn *RealNode) MustRun(tb testing.TB, stdin string, args ...string) string {
	tb.Helper()
	out, err := rn.Run(tb.Context(), stdin, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Connectors is the project installed on the real node as processes, the
// way the chart runs its pods: the controller, the gateway (listening on
// the node's IP, behind the Service the k8s class names) and the CSI driver
// registered with the kubelet.
type Connectors struct {
	// Namespace is the install namespace.
	Namespace string
	// GatewayAddr is the gateway's host:port on the node.
	GatewayAddr string
	// GatewayCA is the gateway CA certificate (PEM).
	GatewayCA []byte
}

// InstallOptions shape InstallConnectors.
type InstallOptions struct {
	// Binary is the connectors binary (CONNECTORS_BIN). Required.
	Binary string
	// TokenExpiration is the lifetime of the kubelet's tokens for the
	// driver (the CSIDriver's tokenRequests); zero: the kubelet's default
	// (one hour). The API server refuses less than 10 minutes.
	TokenExpiration time.Duration
}

// gatewayPort is the gateway's port on the node.
const gatewayPort = 18080

// InstallConnectors installs the CRDs and the k8s class, the install
// namespace with the gateway CA and a trusted CA Secret holding the node's
// CA (connectors may target the node's own API server), the Service of the
// gateway the class names (a ClusterIP in front of the gateway on the node's
// IP) and the CSIDriver object, then starts `connectors controller`,
// `connectors gateway` and `connectors csi` (registering itself with the
// kubelet) inside the node's namespace and waits for them.
func (rn *RealNode) InstallConnectors(tb testing.TB, o InstallOptions) *Connectors {
	tb.Helper()
	if o.Binary == "" {
		tb.Fatal("testbed: InstallOptions.Binary is required (make build; CONNECTORS_BIN)")
	}
	ctx := tb.Context()
	install := "connectors-system"
	c := &Connectors{Namespace: install, GatewayAddr: fmt.Sprintf("%s:%d", rn.NodeIP(), gatewayPort)}
	rn.MustRun(tb, "", "apply", "-f", filepath.Join(RepoRoot(), "chart", "crds"))
	rn.MustRun(tb, "", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
	rn.MustRun(tb, "", "apply", "-f", filepath.Join(RepoRoot(), "chart", "classes", "k8s.yaml"))
	rn.MustRun(tb, "", "create", "namespace", install)

	state := filepath.Join(rn.Dir(), "connectors")
	if err := os.MkdirAll(state, 0o700); err != nil {
		tb.Fatal(err)
	}
	_, caCert, caKey, err := gateway.GenerateCA("connectors test bed gateway")
	if err != nil {
		tb.Fatal(err)
	}
	c.GatewayCA = caCert
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	nodeCA, err := rn.CA()
	if err != nil {
		tb.Fatal(err)
	}
	file := func(name string, content []byte) string {
		p := filepath.Join(state, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	caCertFile, caKeyFile, keyFile := file("ca.crt", caCert), file("ca.key", caKey), file("shared.key", key)
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: install, Name: "connectors-gateway-ca"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: caCert, corev1.TLSPrivateKeyKey: caKey}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: install, Name: "node-ca", Labels: map[string]string{connectorsv1alpha1.CACertLabel: "true"}},
			Data: map[string][]byte{"ca.crt": nodeCA}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: install, Name: "connectors-proxy-service"}, Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(gatewayPort), Protocol: corev1.ProtocolTCP}}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: install, Name: "connectors-proxy-service-node", Labels: map[string]string{discoveryv1.LabelServiceName: "connectors-proxy-service"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{rn.NodeIP()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](gatewayPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
		},
	} {
		if err := rn.Client.Create(ctx, obj); err != nil {
			tb.Fatalf("testbed: create %T %s: %v", obj, obj.GetName(), err)
		}
	}
	driver := csi.DriverObject(csi.DriverName)
	if o.TokenExpiration > 0 {
		driver.Spec.TokenRequests = []storagev1.TokenRequest{{Audience: driver.Spec.TokenRequests[0].Audience, ExpirationSeconds: ptr.To(int64(o.TokenExpiration / time.Second))}}
	}
	if _, err := rn.Clientset.StorageV1().CSIDrivers().Create(ctx, driver, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatal(err)
	}

	kc := rn.Kubeconfig()
	kroot := rn.KubeletRoot()
	socket := filepath.Join(kroot, "plugins", csi.DriverName, "csi.sock")
	for _, d := range []struct {
		name string
		argv []string
	}{
		{"connectors-controller", []string{o.Binary, "controller", "--kubeconfig", kc, "--namespace", install, "--leader-elect=false",
			"--listen-control", "127.0.0.1:18081", "--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:18082",
			"--proxy-ca-file", caCertFile}},
		{"connectors-gateway", []string{o.Binary, "gateway", "--kubeconfig", kc, "--namespace", install,
			"--listen", c.GatewayAddr, "--admin-listen", "127.0.0.1:19090", "--shutdown-delay=-1s",
			"--ca-cert-file", caCertFile, "--ca-key-file", caKeyFile, "--shared-key-file", keyFile}},
		{"connectors-csi", []string{o.Binary, "csi", "--kubeconfig", kc, "--endpoint", "unix://" + socket, "--node-id", rn.Name(),
			"--kubelet-root", kroot, "--proxy-ca-file", caCertFile, "--plugin-registration-path", filepath.Join(kroot, "plugins_registry")}},
	} {
		if err := rn.Start(ctx, d.name, d.argv...); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		for _, d := range []string{"connectors-csi", "connectors-gateway", "connectors-controller"} {
			rn.Stop(d)
		}
	})
	inside := &http.Client{Transport: &http.Transport{DialContext: rn.DialContext}, Timeout: 2 * time.Second}
	rn.WaitFor(tb, "the gateway's /readyz", func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:19090/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := inside.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz answered %s", resp.Status)
		}
		return nil
	})
	rn.WaitFor(tb, "connectors-csi on the node's CSINode", func() error {
		n, err := rn.Clientset.StorageV1().CSINodes().Get(ctx, rn.Name(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, d := range n.Spec.Drivers {
			if d.Name == csi.DriverName {
				return nil
			}
		}
		return fmt.Errorf("drivers %v", n.Spec.Drivers)
	})
	return c
}

// WaitFor polls check for up to a minute (a bound for a hung test).
func (rn *RealNode) WaitFor(tb testing.TB, what string, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testbed: %s not ready within a minute: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
