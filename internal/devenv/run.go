package devenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/internal/localcluster"
)

// Namespace is the install namespace of a local run.
const Namespace = "connectors-system"

// State files written to Options.StateDir once the components serve, and
// removed when the run ends.
const (
	// FileAdminKubeconfig is a cluster-admin kubeconfig of the cluster.
	FileAdminKubeconfig = "admin.kubeconfig"
	// FileGatewayAddr holds the gateway's host:port.
	FileGatewayAddr = "gateway.addr"
	// FileCACert is the gateway CA certificate (PEM).
	FileCACert = "ca.crt"
	// FileCSISocket is the CSI driver's unix socket.
	FileCSISocket = "csi.sock"
)

// Options configure a local run (`connectors dev`).
type Options struct {
	// StateDir receives the state files. Required.
	StateDir string
	// Bins holds etcd and kube-apiserver (see FindBins).
	Bins string
	// Kubeconfig selects an existing cluster instead of a local control
	// plane; the CRDs are installed there too.
	Kubeconfig string
	// RedisURL is the shared token cache. Default: a redis-server started
	// here when one is installed, else none (in-process caches only).
	RedisURL string
	// ListenGateway and ListenControl are the addresses of the gateway and
	// the control API. Default 127.0.0.1:0 (a free port).
	ListenGateway, ListenControl string
	// Logger receives the run's logs. Default: discard.
	Logger logr.Logger
	// Out receives the ready line. Default os.Stdout.
	Out io.Writer
	// Components runs the components until ctx ends; it calls Env.Ready
	// once they all serve. Required.
	Components func(ctx context.Context, env *Env) error
}

// Env is what the components of a local run are wired with.
type Env struct {
	// Config is a cluster-admin REST config; Scheme knows the core types,
	// the connectors API and CRDs; Client (uncached) and Clientset use them.
	Config    *rest.Config
	Scheme    *runtime.Scheme
	Client    client.Client
	Clientset kubernetes.Interface
	// Namespace is the install namespace.
	Namespace string
	// CA is the gateway CA, CACert its certificate (PEM).
	CA     *gateway.CA
	CACert []byte
	// RedisURL is the shared token cache, "" for none.
	RedisURL string
	// SharedKey is the HMAC key of the token caches (random per run).
	SharedKey []byte
	// GatewayListener and ControlListener are bound already.
	GatewayListener, ControlListener net.Listener
	// CSISocket is where the CSI driver serves.
	CSISocket string

	ready func()
}

// Ready writes the state files and prints the ready line, once.
func (e *Env) Ready() { e.ready() }

// NewScheme returns a scheme with the core types, the connectors API and
// CRDs (`connectors dev --kubeconfig` installs them).
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, connectorsv1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("scheme: %w", err)
		}
	}
	return s, nil
}

// Run prepares the cluster (a local control plane, or Options.Kubeconfig),
// installs what a chart install would, starts a redis-server when one is
// installed, runs the components and, once they call Env.Ready, writes the
// state files and prints one ready line. When ctx ends it stops everything
// and removes the state files.
func Run(ctx context.Context, o Options) (err error) {
	if o.StateDir == "" || o.Components == nil {
		return errors.New("devenv: Options.StateDir and .Components are required")
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	for _, l := range []*string{&o.ListenGateway, &o.ListenControl} {
		if *l == "" {
			*l = "127.0.0.1:0"
		}
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	env := &Env{Namespace: Namespace, CSISocket: filepath.Join(o.StateDir, FileCSISocket)}
	var adminKubeconfig []byte
	if o.Kubeconfig != "" {
		if env.Config, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig); err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
		if adminKubeconfig, err = os.ReadFile(o.Kubeconfig); err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
	} else {
		bins, err := FindBins(ctx, o.Bins)
		if err != nil {
			return err
		}
		o.Logger.Info("starting a local control plane", "bins", bins)
		cp, err := startControlPlane(bins)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, cp.Stop()) }()
		env.Config, adminKubeconfig = cp.Config, cp.Kubeconfig
	}
	files := map[string][]byte{FileAdminKubeconfig: adminKubeconfig}
	defer func() {
		for name := range files {
			_ = os.Remove(filepath.Join(o.StateDir, name))
		}
		_ = os.Remove(env.CSISocket)
	}()

	if env.Scheme, err = NewScheme(); err != nil {
		return err
	}
	if env.Client, err = client.New(env.Config, client.Options{Scheme: env.Scheme}); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if env.Clientset, err = kubernetes.NewForConfig(env.Config); err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	var caKey []byte
	if env.CA, env.CACert, caKey, err = GatewayCA(ctx, env.Client, env.Namespace, o.Logger); err != nil {
		return err
	}
	if err := Install(ctx, env.Client, InstallOptions{
		Config: env.Config, Namespace: env.Namespace, CRDs: o.Kubeconfig != "",
		GatewayCACert: env.CACert, GatewayCAKey: caKey, APIServerCA: env.Config.CAData,
	}); err != nil {
		return err
	}
	env.RedisURL = o.RedisURL
	if env.RedisURL == "" && localcluster.HaveRedis() {
		r, err := localcluster.StartRedis(ctx, o.StateDir)
		if err != nil {
			return err
		}
		defer r.Stop()
		env.RedisURL = r.URL()
	}
	env.SharedKey = make([]byte, 32)
	if _, err := rand.Read(env.SharedKey); err != nil {
		return fmt.Errorf("shared key: %w", err)
	}
	if env.GatewayListener, err = (&net.ListenConfig{}).Listen(ctx, "tcp", o.ListenGateway); err != nil {
		return fmt.Errorf("--listen-gateway: %w", err)
	}
	if env.ControlListener, err = (&net.ListenConfig{}).Listen(ctx, "tcp", o.ListenControl); err != nil {
		_ = env.GatewayListener.Close()
		return fmt.Errorf("--listen-control: %w", err)
	}
	files[FileGatewayAddr] = []byte(env.GatewayListener.Addr().String() + "\n")
	files[FileCACert] = env.CACert

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	var writeErr error
	env.ready = func() {
		once.Do(func() {
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(o.StateDir, name), content, 0o600); err != nil {
					writeErr = fmt.Errorf("write %s: %w", name, err)
					cancel() // the run cannot be used without its state files
					return
				}
			}
			if env.RedisURL == "" {
				o.Logger.Info("no redis-server found: token results are cached in this process only")
			}
			_, _ = fmt.Fprintf(o.Out, "connectors dev: ready (state dir %s)\n", o.StateDir)
		})
	}
	return errors.Join(o.Components(ctx, env), writeErr)
}
