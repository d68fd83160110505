package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/mux"
	"github.com/spf13/cobra"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/reconciler"
	"github.com/connectors-io/connectors/tokens"
)

// clusterFlags say how to reach the cluster and how to log.
type clusterFlags struct {
	kubeconfig string
	zap        zap.Options
}

func (f *clusterFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG, then ~/.kube/config)")
	fs := flag.NewFlagSet("zap", flag.ContinueOnError)
	f.zap.BindFlags(fs)
	cmd.Flags().AddGoFlagSet(fs)
}

// setupLogger installs the logger of the flags.
func setupLogger(f *clusterFlags) logr.Logger {
	log := zap.New(zap.UseFlagOptions(&f.zap))
	ctrl.SetLogger(log)
	return log
}

// setup installs the logger and returns the REST config.
func (f *clusterFlags) setup() (*rest.Config, logr.Logger, error) {
	log := setupLogger(f)
	var cfg *rest.Config
	var err error
	if f.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, log, fmt.Errorf("cluster config: %w", err)
	}
	return cfg, log, nil
}

func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	if err := connectorsv1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	// `connectors dev --kubeconfig` installs the CRDs.
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	return s, nil
}

// clients are the API clients a command uses, all on one scheme.
type clients struct {
	scheme *runtime.Scheme
	client client.Client // uncached
	cs     kubernetes.Interface
}

func newClients(cfg *rest.Config) (*clients, error) {
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	return &clients{scheme: scheme, client: c, cs: cs}, nil
}

// reconcilerFlags are the reconciler options both modes share.
type reconcilerFlags struct {
	namespace     string
	clusterDomain string
	proxyTemplate string
	probeTimeout  time.Duration
	resync        time.Duration
}

func (f *reconcilerFlags) bind(cmd *cobra.Command) {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "connectors-system"
	}
	cmd.Flags().StringVar(&f.namespace, "namespace", ns, "install namespace, whose CA Secrets labelled connectors.cpaas.io/ca-cert=true are trusted ($POD_NAMESPACE when set)")
	cmd.Flags().StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	cmd.Flags().StringVar(&f.proxyTemplate, "proxy-url-template", reconciler.DefaultProxyURLTemplate, "status.proxy.httpAddress.url of connectors; {name}, {namespace} and {clusterDomain} are replaced")
	cmd.Flags().DurationVar(&f.probeTimeout, "probe-timeout", 10*time.Second, "timeout of each liveness and auth probe")
	cmd.Flags().DurationVar(&f.resync, "resync", 5*time.Minute, "how often connectors are probed again (jittered)")
}

func (f *reconcilerFlags) options(c client.Client, apiReader client.Reader, rec reconciler.EventRecorder, log logr.Logger) reconciler.Options {
	return reconciler.Options{
		Client: c, APIReader: apiReader, Recorder: rec, Namespace: f.namespace, ClusterDomain: f.clusterDomain,
		ProxyURLTemplate: f.proxyTemplate, ProbeTimeout: f.probeTimeout, Resync: f.resync, Logger: log,
	}
}

// controlAPIs builds the routes the control server mounts next to the
// reconcile routes: the token API and, when the gateway CA is known, the
// configurations API.
func controlAPIs(cs kubernetes.Interface, reader client.Reader, proxyCAFile string, log logr.Logger) ([]func(*mux.Router), error) {
	callers, err := tokens.NewReviewer(cs, nil) // callers present their own API token
	if err != nil {
		return nil, err
	}
	authz, err := tokens.NewAuthorizer(tokens.AuthorizerOptions{Client: cs})
	if err != nil {
		return nil, err
	}
	minter, err := tokens.NewMinter(tokens.MinterOptions{Client: cs})
	if err != nil {
		return nil, err
	}
	api, err := tokens.NewAPI(tokens.APIOptions{Callers: callers, Authorizer: authz, Minter: minter, Connectors: reader, Logger: log.WithName("token-api")})
	if err != nil {
		return nil, err
	}
	mounts := []func(*mux.Router){api.Register}
	if proxyCAFile == "" {
		log.Info("no --proxy-ca-file: the configurations API is not served")
		return mounts, nil
	}
	caPEM, err := os.ReadFile(proxyCAFile)
	if err != nil {
		return nil, fmt.Errorf("--proxy-ca-file: %w", err)
	}
	configs, err := csi.NewConfigurationsAPI(csi.ConfigurationsAPIOptions{
		Callers: callers, Authorizer: authz, Minter: minter, Reader: reader, ProxyCACert: caPEM,
		Logger: log.WithName("configurations-api"),
	})
	if err != nil {
		return nil, err
	}
	return append(mounts, configs.Register), nil
}
