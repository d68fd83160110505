package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/tokens"
)

// gatewayFlags configure `connectors gateway`.
type gatewayFlags struct {
	listen, adminListen          string
	caCertFile, caKeyFile        string
	sharedKeyFile                string
	redisURL                     string
	audience                     string
	maxTunnels, maxPerConnector  int
	cacheSize, bufferSize        int
	idleTimeout, shutdownTimeout time.Duration
	shutdownDelay                time.Duration
	watchPods                    bool
}

func newGatewayCommand() *cobra.Command {
	var cluster clusterFlags
	var f gatewayFlags
	var namespace string
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the shared forward proxy that swaps pod tokens for connector credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.caCertFile == "" || f.caKeyFile == "" || f.sharedKeyFile == "" {
				return errors.New("--ca-cert-file, --ca-key-file and --shared-key-file are required (the chart mounts them from Secrets; `connectors dev` makes its own)")
			}
			cfg, log, err := cluster.setup()
			if err != nil {
				return err
			}
			redis.SetLogger(redisLogger{log.WithName("redis")})
			return runGateway(cmd.Context(), f, namespace, cfg, log)
		},
	}
	cluster.bind(cmd)
	fl := cmd.Flags()
	fl.StringVar(&namespace, "namespace", envOr("POD_NAMESPACE", "connectors-system"), "install namespace, whose CA Secrets labelled connectors.cpaas.io/ca-cert=true are trusted upstream")
	fl.StringVar(&f.listen, "listen", ":"+port, "proxy address ($PORT when set)")
	fl.StringVar(&f.adminListen, "admin-listen", ":9090", "address of /healthz, /readyz and /metrics")
	fl.StringVar(&f.caCertFile, "ca-cert-file", "", "PEM certificate of the gateway CA (tls.crt of its Secret); required")
	fl.StringVar(&f.caKeyFile, "ca-key-file", "", "PEM private key of the gateway CA (tls.key of its Secret); required")
	fl.StringVar(&f.sharedKeyFile, "shared-key-file", "", "file with the HMAC key of token cache keys, the same on every replica (32 bytes or more); required")
	fl.StringVar(&f.redisURL, "redis-url", "", "shared token cache: redis://host:port[/db], ?master=NAME for Sentinel, ?cluster=true for Cluster; empty keeps an in-process cache only")
	fl.StringVar(&f.audience, "audience", tokens.DefaultAudience, "audience of proxy tokens")
	fl.IntVar(&f.maxTunnels, "max-tunnels", 10000, "open tunnels at most")
	fl.IntVar(&f.maxPerConnector, "max-tunnels-per-connector", 1000, "open tunnels of one connector at most")
	fl.IntVar(&f.cacheSize, "cache-size", 4096, "leaf certificates, upstream transports and single-Secret watches kept at most (Secrets beyond it are read from the API server on use)")
	fl.IntVar(&f.bufferSize, "buffer-size", 32<<10, "size of the pooled buffers that copy bodies and streams (one is held per active stream)")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 5*time.Minute, "close tunnels idle this long")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long requests in flight may finish on SIGTERM (with --shutdown-delay and 5 s to close tunnels, keep the pod's terminationGracePeriodSeconds above the sum)")
	fl.DurationVar(&f.shutdownDelay, "shutdown-delay", 5*time.Second, "keep serving with /readyz failing this long on SIGTERM")
	fl.BoolVar(&f.watchPods, "watch-pods", true, "revoke the tokens of deleted pods (watches pod metadata)")
	return cmd
}

func runGateway(ctx context.Context, f gatewayFlags, namespace string, cfg *rest.Config, log logr.Logger) error {
	certPEM, err := os.ReadFile(f.caCertFile)
	if err != nil {
		return fmt.Errorf("--ca-cert-file: %w", err)
	}
	keyPEM, err := os.ReadFile(f.caKeyFile)
	if err != nil {
		return fmt.Errorf("--ca-key-file: %w", err)
	}
	ca, err := gateway.ParseCA(certPEM, keyPEM)
	if err != nil {
		return err
	}
	sharedKey, err := os.ReadFile(f.sharedKeyFile)
	if err != nil {
		return fmt.Errorf("--shared-key-file: %w", err)
	}
	if len(sharedKey) < 32 {
		return fmt.Errorf("--shared-key-file holds %d bytes; it needs at least 32 random bytes", len(sharedKey))
	}
	return serveGateway(ctx, gatewaySetup{
		flags: f, namespace: namespace, cfg: cfg, log: log, ca: ca, sharedKey: sharedKey,
		registerer: ctrlmetrics.Registry, gatherer: ctrlmetrics.Registry,
	})
}

// gatewaySetup is everything serveGateway wires (the dev command fills it too).
type gatewaySetup struct {
	flags      gatewayFlags
	namespace  string
	cfg        *rest.Config
	log        logr.Logger
	ca         *gateway.CA
	sharedKey  []byte
	registerer prometheus.Registerer
	gatherer   prometheus.Gatherer
	// listener overrides flags.listen (tests, dev).
	listener net.Listener
}

func serveGateway(ctx context.Context, s gatewaySetup) error {
	cl, err := newClients(s.cfg)
	if err != nil {
		return err
	}
	scheme, cs := cl.scheme, cl.cs
	var rdb redis.UniversalClient
	if s.flags.redisURL != "" {
		if rdb, err = tokens.NewRedisClient(tokens.RedisOptions{URL: s.flags.redisURL}); err != nil {
			return err
		}
		defer func() { _ = rdb.Close() }()
	} else {
		s.log.Info("no --redis-url: token results are cached in this process only")
	}
	pipeline, err := tokens.New(tokens.Options{
		Client: cs, RESTConfig: s.cfg, Audiences: []string{s.flags.audience}, SharedKey: s.sharedKey,
		Redis: rdb, Logger: s.log.WithName("tokens"), Registerer: s.registerer,
	})
	if err != nil {
		return err
	}
	authz, err := tokens.NewAuthorizer(tokens.AuthorizerOptions{Client: cs, Shared: pipeline, Registerer: s.registerer})
	if err != nil {
		return err
	}
	secrets, err := gateway.SecretClient(s.cfg)
	if err != nil {
		return err
	}
	c, err := cache.New(s.cfg, gateway.CacheOptions(scheme))
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	l := s.listener
	if l == nil {
		if l, err = net.Listen("tcp", s.flags.listen); err != nil {
			return fmt.Errorf("listen on %s: %w", s.flags.listen, err)
		}
	}
	var admin net.Listener
	if s.flags.adminListen != "" {
		if admin, err = net.Listen("tcp", s.flags.adminListen); err != nil {
			_ = l.Close()
			return fmt.Errorf("listen on %s: %w", s.flags.adminListen, err)
		}
	}
	gw, err := gateway.New(ctx, gateway.Options{
		Validator: pipeline, Authorizer: authz, CA: s.ca, Cache: c, Client: secrets, Namespace: s.namespace,
		Listener: l, AdminListener: admin, MaxTunnels: s.flags.maxTunnels, MaxTunnelsPerConnector: s.flags.maxPerConnector, CacheSize: s.flags.cacheSize, BufferSize: s.flags.bufferSize,
		IdleTimeout: s.flags.idleTimeout, ShutdownTimeout: s.flags.shutdownTimeout, ShutdownDelay: s.flags.shutdownDelay,
		Logger: s.log.WithName("gateway"), Registerer: s.registerer, Gatherer: s.gatherer,
	})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pipeline.Start(gctx) })
	if s.flags.watchPods {
		watcher, err := tokens.NewPodWatcher(tokens.PodWatcherOptions{Client: metadata.NewForConfigOrDie(s.cfg), Revoker: pipeline, Logger: s.log.WithName("revocation")})
		if err != nil {
			return err
		}
		g.Go(func() error { return watcher.Start(gctx) })
	}
	g.Go(func() error { return gw.Start(gctx) })
	s.log.Info("gateway serving", "address", l.Addr().String())
	return g.Wait()
}

// redisLogger routes go-redis's own log lines (dial failures) to logr at V(1):
// the token pipeline already logs Redis state transitions once.
type redisLogger struct{ log logr.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.log.V(1).Info("go-redis", "message", fmt.Sprintf(format, v...))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
