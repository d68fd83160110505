package main

import (
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/connectors-io/connectors/reconciler"
)

func newControlCommand() *cobra.Command {
	var cluster clusterFlags
	var rf reconcilerFlags
	var proxyCAFile string
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Serverless mode: reconcile per CloudEvent or POST, and serve the token API",
		Long: "control serves HTTP on $PORT (default 8080) without informers: each CloudEvent (as a Knative\n" +
			"ApiServerSource sends them for Connector, Secret and ConnectorClass changes) or\n" +
			"POST /v1/reconcile/{namespace}/{name} runs one reconcile synchronously. It also serves\n" +
			"POST /v1/namespaces/{ns}/connectors/{name}/token.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := cluster.setup()
			if err != nil {
				return err
			}
			cl, err := newClients(cfg)
			if err != nil {
				return err
			}
			scheme, c, cs := cl.scheme, cl.client, cl.cs
			rec, stopEvents := reconciler.NewEventRecorder(cs, scheme, "connectors-control")
			defer stopEvents()
			mounts, err := controlAPIs(cs, c, proxyCAFile, log)
			if err != nil {
				return err
			}
			srv, err := reconciler.NewServer(reconciler.ServerOptions{
				Reconciler: rf.options(c, c, rec, log),
				Mount:      mounts,
				Logger:     log.WithName("control"),
			})
			if err != nil {
				return err
			}
			addr := net.JoinHostPort("", port)
			log.Info("serving the control API", "address", addr)
			return reconciler.Serve(cmd.Context(), addr, srv.Handler())
		},
	}
	cluster.bind(cmd)
	rf.bind(cmd)
	cmd.Flags().StringVar(&proxyCAFile, "proxy-ca-file", "", "gateway CA certificate (PEM); enables the configurations API")
	cmd.Flags().StringVar(&port, "port", port, "port to listen on ($PORT when set)")
	return cmd
}
