package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/internal/devenv"
	"github.com/connectors-io/connectors/reconciler"
	"github.com/connectors-io/connectors/tokens"
)

// devOptions configure `connectors dev`.
type devOptions struct {
	cluster clusterOptions
	run     devenv.Options
	relay   bool
}

func defaultStateDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "connectors-dev")
}

func (o *devOptions) AddFlags(fs *pflag.FlagSet) {
	o.cluster.AddFlags(fs)
	fs.StringVar(&o.run.StateDir, "state-dir", defaultStateDir(), "where admin.kubeconfig, gateway.addr, csi.sock and ca.crt are written")
	fs.StringVar(&o.run.Bins, "bins", "", "directory with etcd and kube-apiserver (default $CONNECTORS_TEST_BINS, else bin/k8s/"+devenv.KubeVersion+", built on first use)")
	fs.StringVar(&o.run.RedisURL, "redis-url", "", "shared token cache (default: a redis-server started here when installed, else in-process only)")
	fs.StringVar(&o.run.ListenGateway, "listen-gateway", "127.0.0.1:0", "gateway address")
	fs.StringVar(&o.run.ListenControl, "listen-control", "127.0.0.1:0", "control API address (token and configurations API, reconcile)")
	addRelayFlag(fs, &o.relay)
}

func newDevCommand() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on a local control plane (or --kubeconfig): the quick start on one machine",
		Long: "dev starts a local etcd + kube-apiserver (or uses --kubeconfig), a redis-server when one is\n" +
			"installed, installs the CRDs, the k8s ConnectorClass and the CA Secrets, and runs the controller,\n" +
			"the gateway and the CSI driver in this process. It writes admin.kubeconfig, gateway.addr,\n" +
			"csi.sock and ca.crt to --state-dir and prints one ready line. Ctrl-C stops and removes it all.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := o.cluster.logger()
			o.run.Kubeconfig, o.run.Logger, o.run.Out = o.cluster.kubeconfig, log, cmd.OutOrStdout()
			o.run.Components = func(ctx context.Context, env *devenv.Env) error { return devComponents(ctx, env, o.relay) }
			return devenv.Run(cmd.Context(), o.run)
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.AddCommand(newDevExecCommand())
	return cmd
}

// devComponents wires the controller, the control API, the CSI driver and
// the gateway as their commands do, with the local addresses of env.
func devComponents(ctx context.Context, env *devenv.Env, relay bool) error {
	log := ctrl.Log
	// The controller, as `connectors controller` runs it, publishing the
	// gateway's local address as the connectors' proxy URL.
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Cache: reconciler.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	rec, stopEvents := reconciler.NewEventRecorder(env.Clientset, env.Scheme, "connectors-controller")
	defer stopEvents()
	queue := reconciler.NewQueue(0)
	caPEM := env.CACert
	proxyCA := func() ([]byte, error) { return caPEM, nil }
	ropts := reconciler.Options{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Namespace: env.Namespace,
		ProxyURLTemplate: "http://" + env.GatewayListener.Addr().String(), ProxyCA: proxyCA, Logger: log.WithName("reconciler"),
	}
	if err := reconciler.SetupWithManager(ctx, mgr, ropts, reconciler.WatchOptions{Triggers: queue}); err != nil {
		return err
	}
	srv, err := control.New(control.Options{
		Clientset: env.Clientset, Reader: mgr.GetAPIReader(), Queue: queue,
		ProxyCA: proxyCA, Listener: env.ControlListener, Logger: log.WithName("control"),
	})
	if err != nil {
		return err
	}
	driver, err := csi.New(csi.Options{
		Endpoint: env.CSISocket, NodeID: "dev", Reader: env.Client, Clientset: env.Clientset,
		ProxyCACert: caPEM, Logger: log.WithName("csi"),
	})
	if err != nil {
		return err
	}
	gw := gatewayOptions{
		namespace: env.Namespace, redisURL: env.RedisURL, audience: tokens.DefaultAudience, watchPods: true,
		shutdownTimeout: 5 * time.Second, shutdownDelay: -1, relay: relay,
		// dev is a local sandbox: tokens of its token API work outside pods too.
		allowUnbound: true,
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return mgr.Start(gctx) })
	g.Go(func() error { return srv.Start(gctx) })
	g.Go(func() error { return driver.Start(gctx) })
	g.Go(func() error {
		return gw.serve(gctx, gatewayDeps{
			cfg: env.Config, log: log, ca: env.CA, sharedKey: env.SharedKey, listener: env.GatewayListener,
			registerer: prometheus.NewRegistry(),
		})
	})
	g.Go(func() error {
		if !mgr.GetCache().WaitForCacheSync(gctx) {
			return nil // the context ended: the other goroutines report why
		}
		select {
		case <-driver.Serving():
			env.Ready()
		case <-gctx.Done():
		}
		return nil
	})
	return g.Wait()
}

// devExecOptions configure `connectors dev exec`.
type devExecOptions struct {
	stateDir, namespace, connector, configurations, serviceAccount string
}

func (o *devExecOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.stateDir, "state-dir", defaultStateDir(), "state dir of the running `connectors dev`")
	fs.StringVarP(&o.namespace, "namespace", "n", "", "namespace the workload runs in")
	fs.StringVar(&o.connector, "connector", "", "connector name, or NAMESPACE/NAME for another namespace's")
	fs.StringVar(&o.configurations, "configuration", "kubeconfig", "configuration.names of the volume")
	fs.StringVar(&o.serviceAccount, "service-account", "default", "ServiceAccount of the workload (created if missing)")
}

func (o *devExecOptions) Validate() error {
	if o.namespace == "" || o.connector == "" {
		return errors.New("-n NAMESPACE and --connector are required")
	}
	return nil
}

func newDevExecCommand() *cobra.Command {
	var o devExecOptions
	cmd := &cobra.Command{
		Use:   "exec --state-dir DIR -n NAMESPACE --connector NAME|NS/NAME [--configuration kubeconfig] [--service-account SA] -- CMD [ARGS...]",
		Short: "Run a command as a workload that mounts a connector's configuration",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(o.stateDir, devenv.FileAdminKubeconfig))
			if err != nil {
				return fmt.Errorf("is `connectors dev` running with --state-dir %s? %w", o.stateDir, err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("clientset: %w", err)
			}
			code, err := devenv.Exec(cmd.Context(), devenv.ExecOptions{
				Clientset: cs, Socket: filepath.Join(o.stateDir, devenv.FileCSISocket), Namespace: o.namespace,
				ServiceAccount: o.serviceAccount, Connector: o.connector, Configurations: o.configurations,
				Command: args, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// exitCode carries a command's exit status out of cobra.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
