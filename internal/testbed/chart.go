package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/ociimage"
)

// ChartOptions shape InstallChart.
type ChartOptions struct {
	// Image is the image tarball of make image ($CONNECTORS_IMAGE, else
	// bin/connectors-image.tar).
	Image string
	// Set are further --set values (the image's are set from the tarball).
	Set []string
}

// ChartNamespace is the namespace InstallChart installs the release
// "connectors" into.
const ChartNamespace = "connectors-system"

// ImagePath returns the image tarball of make image: $CONNECTORS_IMAGE,
// else bin/connectors-image.tar, or fails the test naming the target.
func ImagePath(tb testing.TB) string {
	tb.Helper()
	p := os.Getenv("CONNECTORS_IMAGE")
	if p == "" {
		p = filepath.Join(RepoRoot(), "bin", "connectors-image.tar")
	}
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("testbed: the connectors image %s: %v (make image builds it; CONNECTORS_IMAGE names another)", p, err)
	}
	return p
}

// Helm runs the test bed's helm inside the node's namespace as admin, with
// a private helm home, and returns its output (stdout and stderr).
func (rn *RealNode) Helm(ctx context.Context, args ...string) (string, error) {
	bins, err := FindBinDir()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	cmd := rn.Command(ctx, filepath.Join(bins, "helm"), args...)
	home := filepath.Join(rn.Dir(), "helm")
	cmd.Env = append(cmd.Env, "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// InstallChart loads the image into the node and installs the chart as
// release "connectors" into ChartNamespace with `helm install --wait`: the
// gateway, the controller, the CSI driver and the bundled Redis as pods.
// Before, it creates the namespace with a trusted CA Secret holding the
// node's CA, so that connectors may target the node's own API server. The
// returned Connectors name the gateway's Service address and its CA.
func (rn *RealNode) InstallChart(tb testing.TB, o ChartOptions) *Connectors {
	tb.Helper()
	ctx := tb.Context()
	if o.Image == "" {
		o.Image = ImagePath(tb)
	}
	tags, err := ociimage.Tags(o.Image)
	if err != nil || len(tags) != 1 {
		tb.Fatalf("testbed: the image tarball %s holds the references %v (%v), want one (make image)", o.Image, tags, err)
	}
	i := strings.LastIndex(tags[0], ":")
	repo, tag := tags[0][:i], tags[0][i+1:]
	if err := rn.ImportImage(ctx, o.Image); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			rn.describe(tb)
		}
	})
	rn.MustRun(tb, "", "create", "namespace", ChartNamespace)
	nodeCA, err := rn.CA()
	if err != nil {
		tb.Fatal(err)
	}
	ca := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ChartNamespace, Name: "node-ca", Labels: map[string]string{connectorsv1alpha1.CACertLabel: "true"}},
		Data: map[string][]byte{"ca.crt": nodeCA}}
	if err := rn.Client.Create(ctx, ca); err != nil {
		tb.Fatal(err)
	}
	args := []string{"install", "connectors", filepath.Join(RepoRoot(), "chart"), "--namespace", ChartNamespace,
		"--set", "image.repository=" + repo, "--set", "image.tag=" + tag, "--set", "csi.kubeletDir=" + rn.KubeletRoot(),
		"--wait", "--timeout", "5m"}
	for _, s := range o.Set {
		args = append(args, "--set", s)
	}
	out, err := rn.Helm(ctx, args...)
	if err != nil {
		tb.Fatal(err) // the cleanup describes the pods
	}
	tb.Logf("helm install:\n%s", firstLines(out, 8))
	return rn.chartConnectors(tb)
}

// chartConnectors reads the installed gateway's address and CA.
func (rn *RealNode) chartConnectors(tb testing.TB) *Connectors {
	tb.Helper()
	ctx := tb.Context()
	svc, err := rn.Clientset.CoreV1().Services(ChartNamespace).Get(ctx, "connectors-proxy-service", metav1.GetOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	sec, err := rn.Clientset.CoreV1().Secrets(ChartNamespace).Get(ctx, "connectors-gateway-ca", metav1.GetOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return &Connectors{Namespace: ChartNamespace, GatewayAddr: svc.Spec.ClusterIP + ":80", GatewayCA: sec.Data[corev1.TLSCertKey]}
}

// describe logs the pods of the release and their recent events, for a
// failed install.
func (rn *RealNode) describe(tb testing.TB) {
	tb.Helper()
	//nolint:forbidigo // the test may be failing with its context ended
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := rn.Run(ctx, "", "get", "pods,events", "-n", ChartNamespace, "-o", "wide")
	tb.Logf("the release's pods and events:\n%s", out)
	logs, _ := rn.Run(ctx, "", "logs", "-n", ChartNamespace, "-l", "app.kubernetes.io/name=connectors", "--all-containers", "--prefix", "--tail=20", "--max-log-requests=10")
	tb.Logf("the release's logs:\n%s", logs)
}

// ComponentLogs returns the logs of every container of a component of the
// release (gateway, controller, csi, redis), each line prefixed by its pod.
func (rn *RealNode) ComponentLogs(tb testing.TB, component string) string {
	tb.Helper()
	return rn.MustRun(tb, "", "logs", "-n", ChartNamespace, "-l", "app.kubernetes.io/component="+component,
		"--all-containers", "--prefix", "--tail=-1", "--max-log-requests=10")
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
