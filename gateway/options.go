package gateway

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/connectors-io/connectors/tokens"
)

// Authorizer decides whether an identity may use a connector;
// *tokens.Authorizer implements it.
type Authorizer interface {
	// Authorize returns nil, or an error wrapping tokens.ErrForbidden or
	// tokens.ErrUnavailable.
	Authorize(ctx context.Context, id tokens.Identity, namespace, name string) error
}

// Defaults of Options that `connectors gateway` flags share.
const (
	// DefaultShutdownTimeout is the default of Options.ShutdownTimeout.
	DefaultShutdownTimeout = 15 * time.Second
	// DefaultShutdownDelay is the default of Options.ShutdownDelay: about
	// the time endpoints take to stop sending new clients to a pod.
	DefaultShutdownDelay = 5 * time.Second
)

// Options configure a Gateway.
type Options struct {
	// Validator checks proxy tokens. Required.
	Validator tokens.Validator
	// Authorizer checks identities against connectors. Required.
	Authorizer Authorizer
	// CA signs the leaves presented inside tunnels. Required.
	CA *CA
	// Cache holds the informers of Connectors and ConnectorClasses; the
	// gateway registers them and Start runs it. Build it with CacheOptions.
	// Required.
	Cache cache.Cache
	// Client watches (and, until a watch has synced, reads) the Secrets that
	// connectors reference, one by one, and the labelled CA Secrets of
	// Namespace; no other Secret is read. Build it with SecretClient.
	// Required.
	Client kubernetes.Interface
	// Namespace is the install namespace, whose labelled CA Secrets are
	// trusted for every upstream.
	Namespace string

	// Listener receives proxy clients. Required for Start.
	Listener net.Listener
	// AdminListener serves /healthz, /readyz and /metrics; optional.
	AdminListener net.Listener
	// ReverseTLSListener, when set, serves the reverse proxy over TLS
	// (reversetls.go): origin-form requests only, behind a leaf of CA for
	// the name the client asks for, which must be a connector's alias host
	// (c-<name>.<namespace>…) or one of ReverseTLSHosts; other names fail
	// the handshake. Optional.
	ReverseTLSListener net.Listener
	// ReverseTLSHosts are the gateway's own names on ReverseTLSListener
	// (its Service's, for the path resolver), lower case; the first is the
	// leaf of a client that sends no server name.
	ReverseTLSHosts []string
	// ClusterDomain is the cluster's DNS domain: the TLS reverse proxy
	// signs c-<name>.<namespace>.svc.<ClusterDomain>, never that prefix in
	// another domain. Default cluster.local.
	ClusterDomain string

	// MaxTunnels bounds open tunnels; beyond it CONNECT gets 503. Default 10000.
	MaxTunnels int
	// MaxTunnelsPerConnector bounds the tunnels of one connector. Default 1000.
	MaxTunnelsPerConnector int
	// MaxTunnelsPerPod bounds the tunnels of one pod (the token's identity;
	// an unbound token's ServiceAccount). Default 256 (a kubectl opens one,
	// a controller a few).
	MaxTunnelsPerPod int
	// MaxTunnelsPerNamespace bounds the tunnels of the pods of one
	// namespace. Default MaxTunnels/4: one tenant cannot fill the replica.
	MaxTunnelsPerNamespace int
	// MaxRequestsPerPod bounds the requests in flight (watches included) of
	// one pod. Default 2000.
	MaxRequestsPerPod int
	// MaxRequestsPerNamespace bounds the requests in flight of the pods of
	// one namespace. Default 10000.
	MaxRequestsPerNamespace int
	// TokenGrace keeps a tunnel open this long past its token's exp. Default 30s.
	TokenGrace time.Duration
	// IdleTimeout closes a tunnel without requests. Default 5m.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake inside a tunnel. Default 10s.
	HandshakeTimeout time.Duration
	// MaxHeaderBytes caps request headers (Proxy-Authorization included):
	// beyond it the answer is 431 and nothing is parsed. Go's HTTP/1.1
	// server allows 4 KiB of slack over it; HTTP/2 tunnels enforce it on
	// the decoded header list. Default 64 KiB.
	MaxHeaderBytes int
	// ShutdownTimeout is how long in-flight requests may finish after
	// shutdown begins; then tunnels and streams are closed. Default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// ShutdownDelay keeps serving (with /readyz failing) before shutting
	// down, so load balancers stop sending new clients. Default
	// DefaultShutdownDelay; negative: no delay.
	ShutdownDelay time.Duration
	// BufferSize is the size of the pooled copy buffers of responses.
	// Default 32 KiB. Watches take buffers of WatchBufferSize or less.
	BufferSize int
	// CacheSize bounds the leaf and transport caches and the number of
	// Secret watches (Secrets beyond it are read per use). Default 4096.
	CacheSize int
	// MaxTokenLifetime refuses a pod-bound proxy token that is valid for
	// longer than this from now. Default 24h (a kubelet-projected token of
	// the CSI volume lives an hour, refreshed before).
	MaxTokenLifetime time.Duration
	// AllowUnboundTokens accepts valid proxy tokens bound to no pod (the
	// token API's, for use outside pods), which deleting a pod cannot
	// revoke. Default false: pod-bound tokens only.
	AllowUnboundTokens bool
	// MaxUnboundTokenLifetime bounds an accepted unbound token's remaining
	// lifetime. Default 1h (the token API's maximum).
	MaxUnboundTokenLifetime time.Duration
	// HTTP2Relay relays an HTTP/2 tunnel whose upstream speaks HTTP/2 frame
	// by frame over an upstream connection of its own (relay.go) instead of
	// net/http's HTTP/2 server and the pooled HTTP/2 client: about 2.5 times
	// less CPU per warm request, but one upstream connection per open tunnel
	// (about 100 KiB more per tunnel here, and as many connections at the
	// upstream) and one more TLS handshake per new tunnel. Default false.
	HTTP2Relay bool
	// PolicyTimeout bounds one evaluation of a class's Rego (authExtractor,
	// generator); beyond it the request is answered 502. Default 100ms.
	PolicyTimeout time.Duration
	// UpstreamTimeout bounds dialing and the TLS handshake upstream. Default 10s.
	UpstreamTimeout time.Duration

	// Logger receives the audit lines and errors (never tokens). Default: discard.
	Logger logr.Logger
	// Registerer receives the metrics; nil means none are registered.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; default prometheus.DefaultGatherer if the
	// Registerer is the default registerer, else none.
	Gatherer prometheus.Gatherer
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() error {
	if o.Validator == nil || o.Authorizer == nil || o.CA == nil || o.Cache == nil || o.Client == nil {
		return errors.New("gateway: Options.Validator, .Authorizer, .CA, .Cache and .Client are required")
	}
	if o.MaxTunnels <= 0 {
		o.MaxTunnels = 10000
	}
	if o.MaxTunnelsPerConnector <= 0 {
		o.MaxTunnelsPerConnector = 1000
	}
	if o.MaxTunnelsPerPod <= 0 {
		o.MaxTunnelsPerPod = 256
	}
	if o.MaxTunnelsPerNamespace <= 0 {
		o.MaxTunnelsPerNamespace = max(o.MaxTunnels/4, 1)
	}
	if o.MaxRequestsPerPod <= 0 {
		o.MaxRequestsPerPod = 2000
	}
	if o.MaxRequestsPerNamespace <= 0 {
		o.MaxRequestsPerNamespace = 10000
	}
	if o.TokenGrace <= 0 {
		o.TokenGrace = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.ShutdownDelay == 0 {
		o.ShutdownDelay = DefaultShutdownDelay
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 32 << 10
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 4096
	}
	if o.MaxTokenLifetime <= 0 {
		o.MaxTokenLifetime = 24 * time.Hour
	}
	if o.MaxUnboundTokenLifetime <= 0 {
		o.MaxUnboundTokenLifetime = time.Hour
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	o.ClusterDomain = strings.ToLower(strings.Trim(o.ClusterDomain, "."))
	hosts := make([]string, 0, len(o.ReverseTLSHosts))
	for _, h := range o.ReverseTLSHosts {
		if h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), ".")); h != "" {
			hosts = append(hosts, h)
		}
	}
	o.ReverseTLSHosts = hosts
	return nil
}
