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
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/tokens"
)

// gatewayOptions configure `connectors gateway` (and the gateway of `dev`).
type gatewayOptions struct {
	cluster                      clusterOptions
	namespace                    string
	listen, adminListen          string
	reverseTLSListen             string
	reverseTLSHosts              []string
	clusterDomain                string
	caCertFile, caKeyFile        string
	sharedKeyFile                string
	redisURL                     string
	audience                     string
	maxTunnels, maxPerConnector  int
	maxPerPod, maxPerNamespace   int
	maxReqPerPod, maxReqPerNS    int
	cacheSize, bufferSize        int
	idleTimeout, shutdownTimeout time.Duration
	shutdownDelay                time.Duration
	watchPods                    bool
	requireRBAC                  bool
	relay                        bool
	policyTimeout                time.Duration
	allowUnbound                 bool
	maxTokenLife, maxUnboundLife time.Duration
}

func (o *gatewayOptions) AddFlags(fs *pflag.FlagSet, env environment) {
	o.cluster.AddFlags(fs)
	fs.StringVar(&o.namespace, "namespace", or(env.podNamespace, "connectors-system"), "install namespace, whose CA Secrets labelled connectors.cpaas.io/ca-cert=true are trusted upstream ($POD_NAMESPACE when set)")
	fs.StringVar(&o.listen, "listen", ":"+or(env.port, "8080"), "proxy address ($PORT when set)")
	fs.StringVar(&o.adminListen, "admin-listen", ":9090", "address of /healthz, /readyz and /metrics")
	fs.StringVar(&o.reverseTLSListen, "reverse-tls-listen", "", "address of the reverse proxy over TLS (leaves of the gateway CA for connector proxy hosts and --reverse-tls-hosts); empty: none")
	fs.StringSliceVar(&o.reverseTLSHosts, "reverse-tls-hosts", nil, "the gateway's own names on --reverse-tls-listen, for the path resolver (default connectors-proxy-service.<namespace>.svc and .svc.<cluster-domain>); the first is the leaf of clients that send no server name")
	fs.StringVar(&o.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain: --reverse-tls-listen signs c-<name>.<namespace>.svc.<cluster-domain>")
	fs.StringVar(&o.caCertFile, "ca-cert-file", "", "PEM certificate of the gateway CA (tls.crt of its Secret); required")
	fs.StringVar(&o.caKeyFile, "ca-key-file", "", "PEM private key of the gateway CA (tls.key of its Secret); required")
	fs.StringVar(&o.sharedKeyFile, "shared-key-file", "", "file with the HMAC key of token cache keys, the same on every replica (32 bytes or more); required")
	fs.StringVar(&o.redisURL, "redis-url", "", "shared token cache: redis://host:port[/db], ?master=NAME for Sentinel, ?cluster=true for Cluster; empty keeps an in-process cache only")
	fs.StringVar(&o.audience, "audience", tokens.DefaultAudience, "audience of proxy tokens")
	fs.IntVar(&o.maxTunnels, "max-tunnels", 10000, "open tunnels at most")
	fs.IntVar(&o.maxPerConnector, "max-tunnels-per-connector", 1000, "open tunnels of one connector at most")
	fs.IntVar(&o.maxPerPod, "max-tunnels-per-pod", 256, "open tunnels of one pod (an unbound token's ServiceAccount) at most")
	fs.IntVar(&o.maxPerNamespace, "max-tunnels-per-namespace", 0, "open tunnels of the pods of one namespace at most (0: a quarter of --max-tunnels)")
	fs.IntVar(&o.maxReqPerPod, "max-requests-per-pod", 2000, "requests in flight (watches included) of one pod at most")
	fs.IntVar(&o.maxReqPerNS, "max-requests-per-namespace", 10000, "requests in flight of the pods of one namespace at most")
	fs.IntVar(&o.cacheSize, "cache-size", 4096, "leaf certificates, upstream transports and single-Secret watches kept at most (Secrets beyond it are read from the API server on use)")
	fs.IntVar(&o.bufferSize, "buffer-size", 32<<10, "size of the pooled buffers that copy response bodies and streams (one is held per active stream; watches take 4 KiB ones)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 5*time.Minute, "close tunnels idle this long")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", gateway.DefaultShutdownTimeout, "how long requests in flight may finish on SIGTERM (with --shutdown-delay and 5 s to close tunnels, keep the pod's terminationGracePeriodSeconds above the sum)")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", gateway.DefaultShutdownDelay, "keep serving with /readyz failing this long on SIGTERM (negative: none)")
	addRelayFlag(fs, &o.relay)
	fs.DurationVar(&o.policyTimeout, "policy-timeout", 100*time.Millisecond, "bound one evaluation of a class's Rego (authExtractor, generator); beyond it the request is answered 502")
	fs.BoolVar(&o.allowUnbound, "allow-unbound-tokens", false, "accept proxy tokens bound to no pod (the token API's, for workloads outside pods: connectors kubeconfig, compose); deleting a pod cannot revoke them")
	fs.DurationVar(&o.maxTokenLife, "max-token-lifetime", 24*time.Hour, "refuse a pod-bound proxy token valid for longer than this from now")
	fs.DurationVar(&o.maxUnboundLife, "max-unbound-token-lifetime", time.Hour, "refuse an unbound proxy token (with --allow-unbound-tokens) valid for longer than this from now")
	fs.BoolVar(&o.watchPods, "watch-pods", true, "revoke the tokens of deleted pods (watches pod metadata)")
	addRequireRBACFlag(fs, &o.requireRBAC)
}

// addRelayFlag registers --http2-relay (the gateway's and dev's).
func addRelayFlag(fs *pflag.FlagSet, relay *bool) {
	fs.BoolVar(relay, "http2-relay", false, "relay HTTP/2 tunnels frame by frame over an upstream connection of their own: "+
		"about 2.5 times less CPU per warm request, but one upstream connection and about 100 KiB more per open tunnel (docs/benchmarks.md)")
}

func (o *gatewayOptions) Validate() error {
	if o.caCertFile == "" || o.caKeyFile == "" || o.sharedKeyFile == "" {
		return errors.New("--ca-cert-file, --ca-key-file and --shared-key-file are required (the chart mounts them from Secrets; `connectors dev` makes its own)")
	}
	return nil
}

func newGatewayCommand(env environment) *cobra.Command {
	var o gatewayOptions
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the shared forward proxy that swaps pod tokens for connector credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.run(cmd.Context())
		},
	}
	o.AddFlags(cmd.Flags(), env)
	return cmd
}

func (o *gatewayOptions) run(ctx context.Context) error {
	certPEM, err := os.ReadFile(o.caCertFile)
	if err != nil {
		return fmt.Errorf("--ca-cert-file: %w", err)
	}
	keyPEM, err := os.ReadFile(o.caKeyFile)
	if err != nil {
		return fmt.Errorf("--ca-key-file: %w", err)
	}
	ca, err := gateway.ParseCA(certPEM, keyPEM)
	if err != nil {
		return err
	}
	sharedKey, err := os.ReadFile(o.sharedKeyFile)
	if err != nil {
		return fmt.Errorf("--shared-key-file: %w", err)
	}
	log := o.cluster.logger()
	cfg, err := o.cluster.restConfig()
	if err != nil {
		return err
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	return o.serve(ctx, gatewayDeps{
		cfg: cfg, log: log, ca: ca, sharedKey: sharedKey, listener: l,
		registerer: ctrlmetrics.Registry, gatherer: ctrlmetrics.Registry,
	})
}

// gatewayDeps is what serve wires besides the options (dev fills it too).
type gatewayDeps struct {
	cfg        *rest.Config
	log        logr.Logger
	ca         *gateway.CA
	sharedKey  []byte
	listener   net.Listener
	registerer prometheus.Registerer
	gatherer   prometheus.Gatherer
}

// serve runs the gateway, its token pipeline and the pod watcher until ctx
// ends; it owns d.listener.
func (o *gatewayOptions) serve(ctx context.Context, d gatewayDeps) error {
	redis.SetLogger(redisLogger{d.log.WithName("redis")})
	cl, err := newClients(d.cfg)
	if err != nil {
		_ = d.listener.Close()
		return err
	}
	var rdb redis.UniversalClient
	if o.redisURL != "" {
		if rdb, err = tokens.NewRedisClient(tokens.RedisOptions{URL: o.redisURL}); err != nil {
			_ = d.listener.Close()
			return err
		}
		defer func() { _ = rdb.Close() }()
	} else {
		d.log.Info("no --redis-url: token results are cached in this process only")
	}
	gw, pipeline, err := o.build(ctx, cl, rdb, d)
	if err != nil {
		_ = d.listener.Close()
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pipeline.Start(gctx) })
	if o.watchPods {
		watcher, err := tokens.NewPodWatcher(tokens.PodWatcherOptions{Client: metadata.NewForConfigOrDie(d.cfg), Revoker: pipeline, Logger: d.log.WithName("revocation")})
		if err != nil {
			return errors.Join(err, d.listener.Close())
		}
		g.Go(func() error { return watcher.Start(gctx) })
	}
	g.Go(func() error { return gw.Start(gctx) })
	d.log.Info("gateway serving", "address", d.listener.Addr().String())
	return g.Wait()
}

func (o *gatewayOptions) build(ctx context.Context, cl *clients, rdb redis.UniversalClient, d gatewayDeps) (*gateway.Gateway, *tokens.Pipeline, error) {
	pipeline, err := tokens.New(tokens.Options{
		Client: cl.cs, RESTConfig: d.cfg, Audiences: []string{o.audience}, SharedKey: d.sharedKey,
		Redis: rdb, Logger: d.log.WithName("tokens"), Registerer: d.registerer,
	})
	if err != nil {
		return nil, nil, err
	}
	authz, err := tokens.NewAuthorizer(tokens.AuthorizerOptions{Client: cl.cs, RequireSAR: o.requireRBAC, Shared: pipeline, Registerer: d.registerer})
	if err != nil {
		return nil, nil, err
	}
	secrets, err := gateway.SecretClient(d.cfg)
	if err != nil {
		return nil, nil, err
	}
	c, err := cache.New(d.cfg, gateway.CacheOptions(cl.client.Scheme()))
	if err != nil {
		return nil, nil, fmt.Errorf("cache: %w", err)
	}
	var admin, reverseTLS net.Listener
	if o.adminListen != "" {
		if admin, err = (&net.ListenConfig{}).Listen(ctx, "tcp", o.adminListen); err != nil {
			return nil, nil, fmt.Errorf("--admin-listen: %w", err)
		}
	}
	if o.reverseTLSListen != "" {
		if reverseTLS, err = (&net.ListenConfig{}).Listen(ctx, "tcp", o.reverseTLSListen); err != nil {
			if admin != nil {
				_ = admin.Close()
			}
			return nil, nil, fmt.Errorf("--reverse-tls-listen: %w", err)
		}
	}
	hosts := o.reverseTLSHosts
	if len(hosts) == 0 {
		svc := "connectors-proxy-service." + o.namespace + ".svc"
		hosts = []string{svc, svc + "." + o.clusterDomain}
	}
	gw, err := gateway.New(ctx, gateway.Options{
		Validator: pipeline, Authorizer: authz, CA: d.ca, Cache: c, Client: secrets, Namespace: o.namespace,
		Listener: d.listener, AdminListener: admin, ReverseTLSListener: reverseTLS, ReverseTLSHosts: hosts, ClusterDomain: o.clusterDomain, MaxTunnels: o.maxTunnels, MaxTunnelsPerConnector: o.maxPerConnector,
		MaxTunnelsPerPod: o.maxPerPod, MaxTunnelsPerNamespace: o.maxPerNamespace, MaxRequestsPerPod: o.maxReqPerPod, MaxRequestsPerNamespace: o.maxReqPerNS,
		CacheSize: o.cacheSize, BufferSize: o.bufferSize, IdleTimeout: o.idleTimeout,
		ShutdownTimeout: o.shutdownTimeout, ShutdownDelay: o.shutdownDelay, HTTP2Relay: o.relay,
		PolicyTimeout:      o.policyTimeout,
		AllowUnboundTokens: o.allowUnbound, MaxTokenLifetime: o.maxTokenLife, MaxUnboundTokenLifetime: o.maxUnboundLife,
		Logger: d.log.WithName("gateway"), Registerer: d.registerer, Gatherer: d.gatherer,
	})
	if err != nil {
		for _, l := range []net.Listener{admin, reverseTLS} {
			if l != nil {
				_ = l.Close()
			}
		}
		return nil, nil, err
	}
	return gw, pipeline, nil
}

// redisLogger routes go-redis's own log lines (dial failures) to logr at V(1):
// the token pipeline already logs Redis state transitions once.
type redisLogger struct{ log logr.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.log.V(1).Info("go-redis", "message", fmt.Sprintf(format, v...))
}
