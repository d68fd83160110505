package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/internal/devenv"
	"github.com/connectors-io/connectors/reconciler"
)

// devFlags configure `connectors dev`.
type devFlags struct {
	stateDir      string
	bins          string
	redisURL      string
	listenGateway string
	listenControl string
}

func defaultStateDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "connectors-dev")
}

func newDevCommand() *cobra.Command {
	var cluster clusterFlags
	var f devFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on a local control plane (or --kubeconfig): the quick start on one machine",
		Long: "dev starts a local etcd + kube-apiserver (or uses --kubeconfig), a redis-server when one is\n" +
			"installed, installs the CRDs, the k8s ConnectorClass and the CA Secrets, and runs the controller,\n" +
			"the gateway and the CSI driver in this process. It writes admin.kubeconfig, gateway.addr,\n" +
			"csi.sock and ca.crt to --state-dir and prints one ready line. Ctrl-C stops and removes it all.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := setupLogger(&cluster)
			return runDev(cmd.Context(), f, cluster.kubeconfig, log)
		},
	}
	cluster.bind(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "where admin.kubeconfig, gateway.addr, csi.sock and ca.crt are written")
	fl.StringVar(&f.bins, "bins", "", "directory with etcd and kube-apiserver (default $CONNECTORS_TEST_BINS, else bin/k8s/"+devenv.KubeVersion+", built on first use)")
	fl.StringVar(&f.redisURL, "redis-url", "", "shared token cache (default: a redis-server started here when installed, else in-process only)")
	fl.StringVar(&f.listenGateway, "listen-gateway", "127.0.0.1:0", "gateway address")
	fl.StringVar(&f.listenControl, "listen-control", "127.0.0.1:0", "control API address (token and configurations API, reconcile)")
	cmd.AddCommand(newDevExecCommand())
	return cmd
}

func runDev(ctx context.Context, f devFlags, kubeconfig string, log logr.Logger) (err error) {
	if err := os.MkdirAll(f.stateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	var cfg *rest.Config
	var adminKubeconfig []byte
	if kubeconfig != "" {
		if cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
		if adminKubeconfig, err = os.ReadFile(kubeconfig); err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
	} else {
		bins, err := devenv.FindBins(ctx, f.bins)
		if err != nil {
			return err
		}
		log.Info("starting a local control plane", "bins", bins)
		cp, err := devenv.StartControlPlane(bins)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, cp.Stop()) }()
		cfg, adminKubeconfig = cp.Config, cp.Kubeconfig
	}
	files := map[string][]byte{"admin.kubeconfig": adminKubeconfig}
	defer func() {
		for name := range files {
			_ = os.Remove(filepath.Join(f.stateDir, name))
		}
		_ = os.Remove(filepath.Join(f.stateDir, "csi.sock"))
	}()

	clis, err := newClients(cfg)
	if err != nil {
		return err
	}
	scheme, c, cs := clis.scheme, clis.client, clis.cs
	const namespace = "connectors-system"
	ca, caPEM, caKey, err := devGatewayCA(ctx, c, namespace, log)
	if err != nil {
		return err
	}
	if err := devenv.Install(ctx, c, devenv.InstallOptions{
		Namespace: namespace, CRDs: kubeconfig != "", GatewayCACert: caPEM, GatewayCAKey: caKey,
		APIServerCA: cfg.CAData, CACertLabel: reconciler.CACertLabel,
	}); err != nil {
		return err
	}
	redisURL := f.redisURL
	if redisURL == "" {
		r, err := devenv.StartRedis(ctx, f.stateDir)
		if err != nil {
			return err
		}
		if r != nil {
			defer r.Stop()
			redisURL = r.URL
		}
	}
	sharedKey := make([]byte, 32)
	if _, err := rand.Read(sharedKey); err != nil {
		return fmt.Errorf("shared key: %w", err)
	}
	gl, err := net.Listen("tcp", f.listenGateway)
	if err != nil {
		return fmt.Errorf("--listen-gateway: %w", err)
	}
	cl, err := net.Listen("tcp", f.listenControl)
	if err != nil {
		_ = gl.Close()
		return fmt.Errorf("--listen-control: %w", err)
	}
	gatewayAddr := gl.Addr().String()

	// The controller, as `connectors controller` runs it, publishing the
	// gateway's local address as the connectors' proxy URL.
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Cache: reconciler.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	rec, stopEvents := reconciler.NewEventRecorder(cs, scheme, "connectors-controller")
	defer stopEvents()
	ropts := reconciler.Options{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Namespace: namespace,
		ProxyURLTemplate: "http://" + gatewayAddr, Logger: log.WithName("reconciler"),
	}
	if err := reconciler.SetupWithManager(ctx, mgr, ropts, reconciler.WatchOptions{}); err != nil {
		return err
	}
	caFile := filepath.Join(f.stateDir, "ca.crt")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil { //nolint:gosec // a CA certificate is public
		return fmt.Errorf("write ca.crt: %w", err)
	}
	files["ca.crt"] = caPEM
	mounts, err := controlAPIs(cs, mgr.GetAPIReader(), caFile, log)
	if err != nil {
		return err
	}
	control, err := reconciler.NewServer(reconciler.ServerOptions{Reconciler: ropts, Mount: mounts, Logger: log.WithName("control")})
	if err != nil {
		return err
	}
	driver, err := csi.New(csi.Options{
		Endpoint: filepath.Join(f.stateDir, "csi.sock"), NodeID: "dev", Reader: c, Clientset: cs,
		ProxyCACert: caPEM, Logger: log.WithName("csi"),
	})
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return mgr.Start(gctx) })
	g.Go(func() error { return reconciler.ServeListener(gctx, cl, control.Handler()) })
	g.Go(func() error { return driver.Start(gctx) })
	g.Go(func() error {
		return serveGateway(gctx, gatewaySetup{
			flags: gatewayFlags{redisURL: redisURL, audience: "connectors-proxy", watchPods: true,
				shutdownTimeout: 5 * time.Second, idleTimeout: 5 * time.Minute},
			namespace: namespace, cfg: cfg, log: log, ca: ca, sharedKey: sharedKey,
			registerer: prometheus.NewRegistry(), listener: gl,
		})
	})
	g.Go(func() error {
		if !mgr.GetCache().WaitForCacheSync(gctx) {
			return nil
		}
		if err := waitForSocket(gctx, filepath.Join(f.stateDir, "csi.sock")); err != nil {
			return nil //nolint:nilerr // the context ended: the other goroutines report why
		}
		files["gateway.addr"] = []byte(gatewayAddr + "\n")
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(f.stateDir, name), content, 0o600); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
		if redisURL == "" {
			log.Info("no redis-server found: token results are cached in this process only")
		}
		fmt.Printf("connectors dev: ready (state dir %s)\n", f.stateDir)
		return nil
	})
	return g.Wait()
}

func waitForSocket(ctx context.Context, path string) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func newDevExecCommand() *cobra.Command {
	var stateDir, namespace, connector, configurations, serviceAccount string
	cmd := &cobra.Command{
		Use:   "exec --state-dir DIR -n NAMESPACE --connector NAME|NS/NAME [--configuration kubeconfig] [--service-account SA] -- CMD [ARGS...]",
		Short: "Run a command as a workload that mounts a connector's configuration",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if namespace == "" || connector == "" {
				return errors.New("-n NAMESPACE and --connector are required")
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(stateDir, "admin.kubeconfig"))
			if err != nil {
				return fmt.Errorf("is `connectors dev` running with --state-dir %s? %w", stateDir, err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("clientset: %w", err)
			}
			code, err := devenv.Exec(cmd.Context(), devenv.ExecOptions{
				Clientset: cs, Socket: filepath.Join(stateDir, "csi.sock"), Namespace: namespace,
				ServiceAccount: serviceAccount, Connector: connector, Configurations: configurations,
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
	cmd.Flags().StringVar(&stateDir, "state-dir", defaultStateDir(), "state dir of the running `connectors dev`")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace the workload runs in")
	cmd.Flags().StringVar(&connector, "connector", "", "connector name, or NAMESPACE/NAME for another namespace's")
	cmd.Flags().StringVar(&configurations, "configuration", "kubeconfig", "configuration.names of the volume")
	cmd.Flags().StringVar(&serviceAccount, "service-account", "default", "ServiceAccount of the workload (created if missing)")
	return cmd
}

// exitCode carries a command's exit status out of cobra.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// devGatewayCA reuses the CA of an earlier run (kubeconfigs rendered with it
// keep working) or generates one.
func devGatewayCA(ctx context.Context, c client.Reader, namespace string, log logr.Logger) (*gateway.CA, []byte, []byte, error) {
	certPEM, keyPEM, err := devenv.GatewayCA(ctx, c, namespace)
	if err != nil {
		return nil, nil, nil, err
	}
	if certPEM != nil {
		ca, err := gateway.ParseCA(certPEM, keyPEM)
		if err == nil {
			log.Info("reusing the gateway CA", "secret", namespace+"/"+devenv.GatewayCASecret)
			return ca, certPEM, keyPEM, nil
		}
		log.Info("the stored gateway CA is unusable: generating a new one", "secret", namespace+"/"+devenv.GatewayCASecret, "error", err.Error())
	}
	return gateway.GenerateCA("connectors dev gateway")
}
