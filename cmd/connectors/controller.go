package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/connectors-io/connectors/reconciler"
)

func newControllerCommand() *cobra.Command {
	var cluster clusterFlags
	var rf reconcilerFlags
	var (
		concurrency            int
		leaderElect            bool
		leaderElectionID       string
		metricsAddr, probeAddr string
		controlAddr            string
		proxyCAFile            string
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Watch mode: reconcile Connectors and ConnectorClasses, and serve the control API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := cluster.setup()
			if err != nil {
				return err
			}
			scheme, err := newScheme()
			if err != nil {
				return err
			}
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:                  scheme,
				Cache:                   reconciler.CacheOptions(),
				Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
				HealthProbeBindAddress:  probeAddr,
				LeaderElection:          leaderElect,
				LeaderElectionID:        leaderElectionID,
				LeaderElectionNamespace: rf.namespace,
			})
			if err != nil {
				return fmt.Errorf("manager: %w", err)
			}
			if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
				return fmt.Errorf("health check: %w", err)
			}
			if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
				return fmt.Errorf("ready check: %w", err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("clientset: %w", err)
			}
			rec, stopEvents := reconciler.NewEventRecorder(cs, scheme, "connectors-controller")
			defer stopEvents()
			opts := rf.options(mgr.GetClient(), mgr.GetAPIReader(), rec, log)
			if err := reconciler.SetupWithManager(cmd.Context(), mgr, opts, reconciler.WatchOptions{Concurrency: concurrency}); err != nil {
				return err
			}
			mounts, err := controlAPIs(cs, mgr.GetAPIReader(), proxyCAFile, log)
			if err != nil {
				return err
			}
			srv, err := reconciler.NewServer(reconciler.ServerOptions{
				Reconciler: opts, Mount: mounts, Logger: log.WithName("control"),
			})
			if err != nil {
				return err
			}
			g, ctx := errgroup.WithContext(cmd.Context())
			g.Go(func() error { return mgr.Start(ctx) })
			g.Go(func() error { return reconciler.Serve(ctx, controlAddr, srv.Handler()) })
			return g.Wait()
		},
	}
	cluster.bind(cmd)
	rf.bind(cmd)
	cmd.Flags().IntVar(&concurrency, "concurrency", 16, "connectors reconciled (probed) at once")
	cmd.Flags().BoolVar(&leaderElect, "leader-elect", true, "elect a leader among replicas (a Lease in --namespace)")
	cmd.Flags().StringVar(&leaderElectionID, "leader-election-id", "connectors-controller", "name of the leader election Lease")
	cmd.Flags().StringVar(&metricsAddr, "metrics-bind-address", ":8081", "address of /metrics (0 disables)")
	cmd.Flags().StringVar(&probeAddr, "health-probe-bind-address", ":8082", "address of /healthz and /readyz (0 disables)")
	cmd.Flags().StringVar(&proxyCAFile, "proxy-ca-file", "", "gateway CA certificate (PEM); enables the configurations API")
	cmd.Flags().StringVar(&controlAddr, "listen-control", ":8080", "address of the control API (CloudEvents, reconcile, token API)")
	return cmd
}
