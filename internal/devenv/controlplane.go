package devenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/internal/localcluster"
)

// KubeVersion is the version of the local control plane.
const KubeVersion = localcluster.KubeVersion

// FindBins returns the directory with etcd and kube-apiserver: dir if
// given, else $CONNECTORS_TEST_BINS, else bin/k8s/<version> under the
// working directory, built there with hack/test-bins.sh (progress on
// stderr) when that script exists.
func FindBins(ctx context.Context, dir string) (string, error) {
	found, err := localcluster.FindBins(dir, ".", "etcd", "kube-apiserver")
	if err == nil {
		return found, nil
	}
	script := filepath.Join("hack", "test-bins.sh")
	if _, serr := os.Stat(script); serr != nil {
		return "", fmt.Errorf("%w; or use --kubeconfig with an existing cluster", err)
	}
	fmt.Fprintln(os.Stderr, "connectors dev: building etcd and kube-apiserver once (about 20 minutes on 2 cores)…")
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the control plane binaries with %s: %w", script, err)
	}
	return localcluster.FindBins(dir, ".", "etcd", "kube-apiserver")
}

// CRDs decodes the chart's generated CRDs.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := chart.CRDs()
	if err != nil {
		return nil, err
	}
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(files))
	for name, raw := range files {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
			return nil, fmt.Errorf("decode %s: %w", name, err)
		}
		out = append(out, &crd)
	}
	return out, nil
}

// startControlPlane starts etcd and kube-apiserver from bins with the CRDs
// installed.
func startControlPlane(bins string) (*localcluster.ControlPlane, error) {
	crds, err := CRDs()
	if err != nil {
		return nil, err
	}
	return localcluster.StartControlPlane(localcluster.ControlPlaneOptions{Bins: bins, CRDs: crds})
}
