package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/connectors-io/connectors/reconciler"
)

// controlOptions configure `connectors control`.
type controlOptions struct {
	cluster     clusterOptions
	reconciler  reconcilerOptions
	control     controlAPIOptions
	port        string
	concurrency int
}

func (o *controlOptions) AddFlags(fs *pflag.FlagSet, env environment) {
	o.cluster.AddFlags(fs)
	o.reconciler.AddFlags(fs, env)
	o.control.AddFlags(fs)
	fs.StringVar(&o.port, "port", or(env.port, "8080"), "port to listen on ($PORT when set)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "connectors reconciled at once for one trigger (a Secret or class used by many)")
}

func newControlCommand(env environment) *cobra.Command {
	var o controlOptions
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Serverless mode: reconcile per CloudEvent or POST, and serve the token and configurations APIs",
		Long: "control serves HTTP on $PORT (default 8080) without informers: each authenticated CloudEvent\n" +
			"(as a Knative ApiServerSource sends them for Connector, Secret and ConnectorClass changes) or\n" +
			"POST /v1/reconcile/{namespace}/{name} runs one reconcile synchronously. It also serves\n" +
			"POST /v1/namespaces/{ns}/connectors/{name}/token and, with --proxy-ca-file, the\n" +
			"configurations API.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.AddFlags(cmd.Flags(), env)
	return cmd
}

func (o *controlOptions) run(cmd *cobra.Command) error {
	log, cl, err := o.cluster.connect()
	if err != nil {
		return err
	}
	rec, stopEvents := reconciler.NewEventRecorder(cl.cs, cl.client.Scheme(), "connectors-control")
	defer stopEvents()
	proxyCA, err := o.control.loadProxyCA()
	if err != nil {
		return err
	}
	ropts := o.reconciler.options(cl.client, cl.client, rec, log)
	ropts.ProxyCA = proxyCA
	runner, err := reconciler.NewRunner(ropts, o.concurrency)
	if err != nil {
		return err
	}
	l, err := (&net.ListenConfig{}).Listen(cmd.Context(), "tcp", net.JoinHostPort("", o.port))
	if err != nil {
		return fmt.Errorf("--port: %w", err)
	}
	srv, err := o.control.server(controlDeps{clients: cl, reader: cl.client, runner: runner, proxyCA: proxyCA, l: l, log: log})
	if err != nil {
		_ = l.Close()
		return err
	}
	log.Info("serving the control API", "address", l.Addr().String())
	return srv.Start(cmd.Context())
}
