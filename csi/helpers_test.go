//go:build integration

package csi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

var nsCounter atomic.Int64

// namespace creates a fresh namespace (with its "default" ServiceAccount).
func namespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("csi-%d-%d", time.Now().UnixNano()%1e6, nsCounter.Add(1))
	cp.CreateNamespace(t, name)
	return name
}

// upstreamToken is the target cluster's token held by the connector's
// Secret; it must appear in no rendered file.
const upstreamToken = testbed.QuickstartToken

// applyQuickstart applies the quick start's Secret and Connector in ns and
// publishes the connector's status as the reconciler would.
func applyQuickstart(t *testing.T, ns string) {
	t.Helper()
	cp.InstallK8sClass(t)
	cp.MustKubectl(t, testbed.QuickstartManifests("", ""), "apply", "-n", ns, "-f", "-")
	publishStatus(t, ns, "k8s-connector", true)
}

// createConnector creates a connector of class in ns and publishes its
// status (Ready or not).
func createConnector(t *testing.T, ns, name, class string, readyStatus bool) {
	t.Helper()
	cp.InstallK8sClass(t)
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       connectorsv1alpha1.ConnectorSpec{ConnectorClassName: class, Address: "https://" + name + ".example.com:6443"},
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	publishStatus(t, ns, name, readyStatus)
}

// publishStatus sets status.proxy.httpAddress.url and the Ready condition
// as the reconciler does.
func publishStatus(t *testing.T, ns, name string, readyStatus bool) {
	t.Helper()
	var c connectorsv1alpha1.Connector
	if err := cp.Client.Get(t.Context(), keyOf(ns, name), &c); err != nil {
		t.Fatal(err)
	}
	status, reason, msg := metav1.ConditionTrue, "Ready", "all checks passed"
	if !readyStatus {
		status, reason, msg = metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed, "the target refused the credential: update the Secret"
	}
	cp.PublishStatus(t, &c, status, reason, msg, fmt.Sprintf("http://c-%s.%s.svc.cluster.local", name, ns))
}

func keyOf(ns, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: ns, Name: name}
}

// driver is a running CSI driver and a gRPC client on its socket.
type driver struct {
	node     csipb.NodeClient
	identity csipb.IdentityClient
	socket   string
	dir      string
}

// startDriver runs a driver on a unix socket in a short temporary
// directory (socket paths are limited to 108 bytes) until the test ends.
func startDriver(t *testing.T, mod func(*csi.Options)) *driver {
	t.Helper()
	dir, err := os.MkdirTemp("", "csi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	opts := csi.Options{
		Endpoint: "unix://" + filepath.Join(dir, "csi.sock"), NodeID: "node-1",
		Reader: cp.Client, Clientset: cp.Clientset, ProxyCACert: gatewayCA,
		Logger: captured.Logger(t.Name()),
	}
	if mod != nil {
		mod(&opts)
	}
	d, err := csi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("driver: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the driver did not stop within 15s")
		}
	})
	socket := filepath.Join(dir, "csi.sock")
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	drv := &driver{node: csipb.NewNodeClient(conn), identity: csipb.NewIdentityClient(conn), socket: socket, dir: dir}
	// Wait for the socket.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := drv.identity.Probe(t.Context(), &csipb.ProbeRequest{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the driver does not answer on %s: %v", socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return drv
}

// target returns a fresh target path (its parent exists, as the kubelet
// prepares it) and unpublishes it when the test ends.
func (d *driver) target(t *testing.T, name string) string {
	t.Helper()
	parent := filepath.Join(d.dir, "pods", name)
	if err := os.MkdirAll(parent, 0o750); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(parent, "mount")
	t.Cleanup(func() {
		_, _ = d.node.NodeUnpublishVolume(context.Background(), &csipb.NodeUnpublishVolumeRequest{VolumeId: name, TargetPath: target})
	})
	return target
}

// kubeletToken is what the kubelet puts into the volume context for the
// CSIDriver's tokenRequests.
func kubeletToken(t *testing.T, tok string, exp time.Time) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{tokens.DefaultAudience: map[string]any{"token": tok, "expirationTimestamp": exp}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// publishRequest is the request the kubelet sends for an inline volume of
// pod with the given volumeAttributes.
func publishRequest(pod *corev1.Pod, volumeID, target string, attrs map[string]string) *csipb.NodePublishVolumeRequest {
	vc := map[string]string{
		csi.KeyPodName: pod.Name, csi.KeyPodNamespace: pod.Namespace, csi.KeyPodUID: string(pod.UID),
		csi.KeyServiceAccountName: pod.Spec.ServiceAccountName, csi.KeyEphemeral: "true",
	}
	for k, v := range attrs {
		vc[k] = v
	}
	return &csipb.NodePublishVolumeRequest{
		VolumeId: volumeID, TargetPath: target, Readonly: true, VolumeContext: vc,
		VolumeCapability: &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY},
		},
	}
}

// readFiles reads the visible files of a mounted volume (through the
// atomic writer's symlinks), by name.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// allFiles reads every regular file under dir, the generations included.
func allFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mountType is the filesystem mounted at path, "" when none.
func mountType(t *testing.T, path string) string {
	t.Helper()
	m, err := csi.MountPoints()
	if err != nil {
		t.Fatal(err)
	}
	return m[path]
}

// assertGone checks that nothing is left at target: no mount, no directory.
func assertGone(t *testing.T, target string) {
	t.Helper()
	if typ := mountType(t, target); typ != "" {
		t.Errorf("%s is still mounted (%s)", target, typ)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("%s is still there (%v)", target, err)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
