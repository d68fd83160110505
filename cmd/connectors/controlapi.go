package main

import (
	"errors"
	"net"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/reconciler"
)

// controlAPIOptions configure the control API of `controller` and `control`.
type controlAPIOptions struct {
	proxyCAFile     string
	triggerAudience string
	requireRBAC     bool
}

func (o *controlAPIOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.proxyCAFile, "proxy-ca-file", "", "gateway CA certificate (PEM); enables the configurations API")
	addRequireRBACFlag(fs, &o.requireRBAC)
	fs.StringVar(&o.triggerAudience, "trigger-audience", control.DefaultTriggerAudience, "audience of the ServiceAccount tokens that trigger reconciles (the sink audience of Knative's OIDC authentication)")
}

// controlDeps is what a control server is built from.
type controlDeps struct {
	clients *clients
	reader  client.Reader
	runner  *reconciler.Runner
	queue   *reconciler.Queue
	proxyCA func() ([]byte, error) // nil: configurations API off
	l       net.Listener
	log     logr.Logger
}

// loadProxyCA returns the reader of --proxy-ca-file, nil without one.
func (o *controlAPIOptions) loadProxyCA() (func() ([]byte, error), error) {
	if o.proxyCAFile == "" {
		return nil, nil
	}
	ca := csi.CAFile(o.proxyCAFile)
	if _, err := ca(); err != nil {
		return nil, errors.Join(errors.New("--proxy-ca-file"), err)
	}
	return ca, nil
}

func (o *controlAPIOptions) server(d controlDeps) (*control.Server, error) {
	return control.New(control.Options{
		RequireRBAC: o.requireRBAC,
		Clientset:   d.clients.cs, Reader: d.reader, Runner: d.runner, Queue: d.queue,
		TriggerAudience: o.triggerAudience, ProxyCA: d.proxyCA, Listener: d.l, Logger: d.log.WithName("control"),
	})
}
