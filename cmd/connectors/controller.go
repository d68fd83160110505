package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/connectors-io/connectors/reconciler"
)

// controllerOptions configure `connectors controller`.
type controllerOptions struct {
	cluster                clusterOptions
	reconciler             reconcilerOptions
	control                controlAPIOptions
	concurrency            int
	leaderElect            bool
	leaderElectionID       string
	metricsAddr, probeAddr string
	controlAddr            string
	triggerQueue           int
}

func (o *controllerOptions) AddFlags(fs *pflag.FlagSet, env environment) {
	o.cluster.AddFlags(fs)
	o.reconciler.AddFlags(fs, env)
	o.control.AddFlags(fs)
	fs.IntVar(&o.concurrency, "concurrency", 16, "connectors reconciled (probed) at once")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "elect a leader among replicas (a Lease in --namespace): only the leader reconciles")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "connectors-controller", "name of the leader election Lease")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8081", "address of /metrics (0 disables)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8082", "address of /healthz and /readyz (0 disables)")
	fs.StringVar(&o.controlAddr, "listen-control", ":8080", "address of the control API (CloudEvents, reconcile, token and configurations API)")
	fs.IntVar(&o.triggerQueue, "trigger-queue", 1024, "triggers buffered for the controller (a replica that does not lead keeps them until it leads)")
}

func (o *controllerOptions) Validate() error {
	if o.concurrency < 1 || o.triggerQueue < 1 {
		return errors.New("--concurrency and --trigger-queue must be at least 1")
	}
	return nil
}

func newControllerCommand(env environment) *cobra.Command {
	var o controllerOptions
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Watch mode: reconcile Connectors and ConnectorClasses, and serve the control API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.run(cmd)
		},
	}
	o.AddFlags(cmd.Flags(), env)
	return cmd
}

func (o *controllerOptions) run(cmd *cobra.Command) error {
	log, cl, err := o.cluster.connect()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cl.cfg, ctrl.Options{
		Scheme:                        cl.client.Scheme(),
		Cache:                         reconciler.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              o.leaderElectionID,
		LeaderElectionNamespace:       o.reconciler.namespace,
		LeaderElectionReleaseOnCancel: true, // a replica that stops hands over at once
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
	rec, stopEvents := reconciler.NewEventRecorder(cl.cs, cl.client.Scheme(), "connectors-controller")
	defer stopEvents()
	queue := reconciler.NewQueue(o.triggerQueue)
	proxyCA, err := o.control.loadProxyCA()
	if err != nil {
		return err
	}
	ropts := o.reconciler.options(mgr.GetClient(), mgr.GetAPIReader(), rec, log)
	ropts.ProxyCA = proxyCA
	if err := reconciler.SetupWithManager(cmd.Context(), mgr, ropts, reconciler.WatchOptions{Concurrency: o.concurrency, Triggers: queue}); err != nil {
		return err
	}
	l, err := (&net.ListenConfig{}).Listen(cmd.Context(), "tcp", o.controlAddr)
	if err != nil {
		return fmt.Errorf("--listen-control: %w", err)
	}
	srv, err := o.control.server(controlDeps{clients: cl, reader: mgr.GetAPIReader(), queue: queue, proxyCA: proxyCA, l: l, log: log})
	if err != nil {
		_ = l.Close()
		return err
	}
	g, ctx := errgroup.WithContext(cmd.Context())
	g.Go(func() error { return mgr.Start(ctx) })
	g.Go(func() error { return srv.Start(ctx) })
	return g.Wait()
}
