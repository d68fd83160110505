package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/connectors-io/connectors/chart"
)

// KubeVersion is the version of the local control plane.
const KubeVersion = "v1.37.2"

// ControlPlane is a running local etcd + kube-apiserver.
type ControlPlane struct {
	// Config is a cluster-admin REST config.
	Config *rest.Config
	// Kubeconfig is the admin kubeconfig (YAML).
	Kubeconfig []byte
	env        *envtest.Environment
}

// FindBins returns the directory with etcd, kube-apiserver and kubectl:
// dir if given, else $CONNECTORS_TEST_BINS, else bin/k8s/<version> under
// the working directory, built there with hack/test-bins.sh (progress on
// stderr) when that script exists.
func FindBins(ctx context.Context, dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("CONNECTORS_TEST_BINS")
	}
	if dir == "" {
		dir = filepath.Join("bin", "k8s", KubeVersion)
	}
	if hasBins(dir) {
		return filepath.Abs(dir)
	}
	if script := filepath.Join("hack", "test-bins.sh"); fileExists(script) {
		fmt.Fprintln(os.Stderr, "connectors dev: building etcd and kube-apiserver once (about 9 minutes on 2 cores)…")
		cmd := exec.CommandContext(ctx, "bash", script)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("build the control plane binaries with %s: %w", script, err)
		}
		if hasBins(dir) {
			return filepath.Abs(dir)
		}
	}
	return "", fmt.Errorf("no etcd and kube-apiserver in %s: run `make test-bins` in the source tree, pass --bins, or use --kubeconfig with an existing cluster", dir)
}

func hasBins(dir string) bool {
	return fileExists(filepath.Join(dir, "etcd")) && fileExists(filepath.Join(dir, "kube-apiserver"))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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

// StartControlPlane starts etcd and kube-apiserver from bins with the CRDs
// installed.
func StartControlPlane(bins string) (*ControlPlane, error) {
	crds, err := CRDs()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bins,
		CRDs:                     crds,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// The OIDC discovery document must advertise a reachable JWKS URL.
	env.ControlPlane.GetAPIServer().Configure().Set("external-hostname", "127.0.0.1")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start etcd and kube-apiserver from %s: %w", bins, err)
	}
	return &ControlPlane{Config: cfg, Kubeconfig: env.KubeConfig, env: env}, nil
}

// Stop stops the control plane and removes its data.
func (cp *ControlPlane) Stop() error {
	if err := cp.env.Stop(); err != nil {
		return errors.Join(errors.New("stop the control plane"), err)
	}
	return nil
}
