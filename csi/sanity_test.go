//go:build integration

package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
)

// TestCSISanity runs csi-sanity's Identity and Node suites against the
// driver over its unix socket. The driver has no Controller service, so
// the test's dial options stand in for the kubelet: they report a
// Controller service (without capabilities) so that sanity runs its
// publish specs, and CreateVolume (which
// sanity calls to get a volume to publish) is answered on the client side
// with the volume context the kubelet sends for an inline ephemeral volume
// of a real pod, and NodePublishVolume gets readOnly: true, as every
// inline volume of this driver must have.
func TestCSISanity(t *testing.T) {
	ns := namespace(t)
	applyQuickstart(t, ns)
	pod := cp.CreatePod(t, ns, "sanity", "default")
	d := startDriver(t, nil)

	dir, err := os.MkdirTemp("", "sanity")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// published counts the NodePublishVolume calls of a volume made by the
	// stand-in: the "should work" and "should be idempotent" specs must run.
	// The specs still skipped need capabilities an ephemeral-only driver
	// does not have (staging, stats, expansion, health, multi-writer).
	var published atomic.Int64
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + d.socket
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.IdempotentCount = 3
	cfg.DialOptions = []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(kubeletStandIn(pod, &published)),
	}
	sanity.GinkgoTest(&cfg)
	gomega.RegisterFailHandler(ginkgo.Fail)
	suite, reporter := ginkgo.GinkgoConfiguration()
	suite.FocusStrings = []string{"Identity Service", "Node Service"}
	if !ginkgo.RunSpecs(t, "connectors-csi sanity", suite, reporter) {
		t.Error("csi-sanity failed")
	}
	if published.Load() == 0 {
		t.Error("csi-sanity ran none of its NodePublishVolume specs of a created volume")
	}
}

// kubeletStandIn answers CreateVolume and DeleteVolume on the client side
// and makes NodePublishVolume requests look like the kubelet's for an
// inline volume of pod; every other call goes to the driver.
func kubeletStandIn(pod *corev1.Pod, published *atomic.Int64) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		switch method {
		case csipb.Controller_CreateVolume_FullMethodName:
			r := req.(*csipb.CreateVolumeRequest)
			vc := publishRequest(pod, "", "", map[string]string{"connector.name": "k8s-connector", "configuration.names": "kubeconfig"}).VolumeContext
			reply.(*csipb.CreateVolumeResponse).Volume = &csipb.Volume{VolumeId: "csi-" + r.GetName(), VolumeContext: vc}
			return nil
		case csipb.Controller_DeleteVolume_FullMethodName:
			return nil
		case csipb.Identity_GetPluginCapabilities_FullMethodName:
			// csi-sanity runs its NodePublishVolume specs only for a plugin
			// with a Controller service (it gets the volume to publish from
			// CreateVolume); the stand-in above plays that service.
			if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
				return err
			}
			r := reply.(*csipb.GetPluginCapabilitiesResponse)
			r.Capabilities = append(r.Capabilities, &csipb.PluginCapability{Type: &csipb.PluginCapability_Service_{
				Service: &csipb.PluginCapability_Service{Type: csipb.PluginCapability_Service_CONTROLLER_SERVICE},
			}})
			return nil
		case csipb.Controller_ControllerGetCapabilities_FullMethodName:
			// No controller capabilities: no attach, no snapshots, no listing.
			return nil
		case csipb.Node_NodePublishVolume_FullMethodName:
			if r := req.(*csipb.NodePublishVolumeRequest); len(r.GetVolumeContext()) > 0 {
				published.Add(1)
				r.Readonly = true
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
