package gateway

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"golang.org/x/net/http2"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/policy"
	"github.com/connectors-io/connectors/tokens"
)

// Gateway is the forward proxy. Build it with New and run it with Start.
type Gateway struct {
	opts         Options
	leaves       *leafCache
	state        *state
	transports   *transportCache
	registries   *registryTransports
	h2           *http2.Server // serves every HTTP/2 tunnel
	h2base       *http.Server  // its BaseConfig: Shutdown sends GOAWAY to all
	metrics      *metrics
	buffers      *bufferPool
	watchBuffers *bufferPool    // held for a watch's whole life: small
	auditLog     logr.Logger    // Logger.WithName("audit"), built once: naming a logger clones it
	serverLog    *log.Logger    // the ErrorLog of every HTTP server (newServerLog)
	policy       *policy.Engine // the classes' Rego (authExtractor, generator)

	ready    atomic.Bool
	draining atomic.Bool

	mu                                   sync.Mutex
	total                                int                  // open tunnels
	perConn                              map[string]int       // open tunnels per connector
	perPod, perNamespace                 map[string]int       // open tunnels per pod identity and its namespace
	requestsPerPod, requestsPerNamespace map[string]int       // requests in flight
	open                                 map[*tunnel]struct{} // for shutdown
	inFlight                             counter              // requests being served
	running                              counter              // tunnel goroutines alive
	watches                              watchBodies          // ended cleanly on shutdown
}

// New checks opts, fills defaults and registers the informers on the cache.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		opts:   opts,
		leaves: newLeafCache(opts.CA, opts.CacheSize, opts.Now),
		state: newState(opts.Cache,
			newSecretWatches(opts.Client, opts.Namespace, opts.CacheSize, opts.Logger, m),
			opts.Namespace, opts.CacheSize),
		metrics:      m,
		buffers:      newBufferPool(opts.BufferSize),
		watchBuffers: newBufferPool(min(opts.BufferSize, WatchBufferSize)),
		auditLog:     opts.Logger.WithName("audit"),
		serverLog:    newServerLog(opts.Logger.WithName("http")),
		policy:       policy.New(policy.Options{Timeout: opts.PolicyTimeout, CacheSize: opts.CacheSize}),
		perConn:      map[string]int{}, perPod: map[string]int{}, perNamespace: map[string]int{},
		requestsPerPod: map[string]int{}, requestsPerNamespace: map[string]int{},
		open: map[*tunnel]struct{}{},
	}
	g.transports = newTransportCache(opts.CacheSize, opts.UpstreamTimeout)
	g.registries = newRegistryTransports(opts.CacheSize, opts.Now)
	// MaxHeaderBytes caps HTTP/2 header lists too.
	g.h2base = g.h2BaseServer()
	g.h2 = &http2.Server{IdleTimeout: opts.IdleTimeout, MaxReadFrameSize: 1 << 20, MaxConcurrentStreams: maxStreamsPerTunnel}
	if err := http2.ConfigureServer(g.h2base, g.h2); err != nil {
		return nil, fmt.Errorf("gateway: HTTP/2 server: %w", err)
	}
	if err := g.state.informers(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// session is an authenticated proxy client.
type session struct {
	id    tokens.Identity
	token tokens.Token
	refs  []connectorsv1alpha1.ConnectorRef
	audit []any // the identity's audit keys and values, built once
}

func newSession(id tokens.Identity, token tokens.Token, refs []connectorsv1alpha1.ConnectorRef) *session {
	connectors := make([]string, 0, len(refs))
	for _, r := range refs {
		connectors = append(connectors, r.String())
	}
	return &session{id: id, token: token, refs: refs, audit: []any{
		"podNamespace", id.Namespace, "podName", id.PodName, "podUID", id.PodUID,
		"serviceAccount", id.ServiceAccountName, "connectors", connectors,
	}}
}

// ServeHTTP is the handler of the plain-HTTP proxy listener: CONNECT and
// absolute URIs are the forward proxy's, origin-form requests the reverse
// proxy's (reverse.go).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		g.serveConnect(w, r)
	case r.URL.IsAbs() && r.URL.Scheme == "http":
		g.servePlain(w, r)
	default:
		g.serveReverse(w, r)
	}
}
