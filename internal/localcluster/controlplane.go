package localcluster

import (
	"errors"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlaneOptions shape a control plane.
type ControlPlaneOptions struct {
	// Bins holds etcd and kube-apiserver. Required.
	Bins string
	// CRDs are installed once the API server is up.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// CRDDirs are directories of CRD manifests to install.
	CRDDirs []string
	// Scheme is the scheme of the CRD installation. Default: client-go's.
	Scheme *runtime.Scheme
	// APIServerFlags are further kube-apiserver flags (name without dashes).
	APIServerFlags map[string]string
}

// ControlPlane is a running etcd + kube-apiserver.
type ControlPlane struct {
	// Config is a cluster-admin REST config.
	Config *rest.Config
	// Kubeconfig is an admin kubeconfig (YAML).
	Kubeconfig []byte
	env        *envtest.Environment
}

// StartControlPlane starts etcd and kube-apiserver and installs the CRDs.
func StartControlPlane(opts ControlPlaneOptions) (*ControlPlane, error) {
	if opts.Bins == "" {
		return nil, errors.New("localcluster: ControlPlaneOptions.Bins is required")
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    opts.Bins,
		CRDs:                     opts.CRDs,
		CRDDirectoryPaths:        opts.CRDDirs,
		ErrorIfCRDPathMissing:    len(opts.CRDDirs) > 0,
		Scheme:                   opts.Scheme,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	// Without it the API server advertises the machine's external address
	// in its OIDC discovery document (the JWKS URL), which local clients
	// cannot always reach.
	args.Set("external-hostname", "127.0.0.1")
	for k, v := range opts.APIServerFlags {
		args.Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start etcd and kube-apiserver from %s: %w", opts.Bins, err)
	}
	return &ControlPlane{Config: cfg, Kubeconfig: env.KubeConfig, env: env}, nil
}

// Stop stops the API server and etcd and removes their data.
func (cp *ControlPlane) Stop() error {
	if err := cp.env.Stop(); err != nil {
		return fmt.Errorf("stop the control plane: %w", err)
	}
	return nil
}
