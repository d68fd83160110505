package main

import (
	"flag"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/connectors-io/connectors/internal/devenv"
)

// clusterOptions say how to reach the cluster and how to log.
type clusterOptions struct {
	kubeconfig string
	zap        zap.Options
}

func (o *clusterOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG, then ~/.kube/config)")
	gfs := flag.NewFlagSet("zap", flag.ContinueOnError)
	o.zap.BindFlags(gfs)
	fs.AddGoFlagSet(gfs)
}

// logger installs and returns the logger of the flags.
func (o *clusterOptions) logger() logr.Logger {
	log := zap.New(zap.UseFlagOptions(&o.zap))
	ctrl.SetLogger(log)
	return log
}

// restConfig is the REST config of the flags.
func (o *clusterOptions) restConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	return cfg, nil
}

// connect installs the logger and builds the clients of the flags.
func (o *clusterOptions) connect() (logr.Logger, *clients, error) {
	log := o.logger()
	cfg, err := o.restConfig()
	if err != nil {
		return log, nil, err
	}
	cl, err := newClients(cfg)
	return log, cl, err
}

// clients are the API clients a command uses, all on one scheme.
type clients struct {
	cfg    *rest.Config
	client client.Client // uncached
	cs     kubernetes.Interface
}

func newClients(cfg *rest.Config) (*clients, error) {
	scheme, err := devenv.NewScheme()
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
	return &clients{cfg: cfg, client: c, cs: cs}, nil
}
