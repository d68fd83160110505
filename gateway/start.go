package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	toolscache "k8s.io/client-go/tools/cache"
)

// Start runs the admin listener (at once), the informers and, once they
// have synced, the proxy listener until ctx ends, then shuts down: /readyz
// fails, (after ShutdownDelay) no new connections are accepted, open tunnels
// are asked to close when idle (HTTP/2 GOAWAY, HTTP/1.1 keep-alives off),
// watches end cleanly (their clients watch again elsewhere), in-flight
// requests get ShutdownTimeout to finish, and whatever still runs
// (long streams) is closed so that clients reconnect elsewhere. At most
// ShutdownDelay + ShutdownTimeout + 5 s pass between the end of ctx and the
// return.
func (g *Gateway) Start(ctx context.Context) error {
	if g.opts.Listener == nil {
		return errors.New("gateway: Options.Listener is required to start")
	}
	// The admin listener serves from the start: /healthz answers (a
	// liveness probe must not kill a slow start), /readyz says "starting".
	eg := new(errgroup.Group)
	var admin *http.Server
	if g.opts.AdminListener != nil {
		admin = g.adminServer()
		eg.Go(func() error { return serve(admin, g.opts.AdminListener) })
	}
	closeAdmin := func() {
		if admin != nil {
			_ = admin.Close()
		}
	}

	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	g.state.secrets.run(cacheCtx)
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- g.opts.Cache.Start(cacheCtx) }()
	if !g.opts.Cache.WaitForCacheSync(ctx) || !toolscache.WaitForCacheSync(ctx.Done(), g.state.secrets.caSynced) {
		stopCache()
		cacheErr := <-cacheDone
		g.state.secrets.wait()
		closeAdmin()
		adminErr := eg.Wait()
		_ = g.opts.Listener.Close()
		if g.opts.ReverseTLSListener != nil {
			_ = g.opts.ReverseTLSListener.Close()
		}
		if ctx.Err() != nil {
			return adminErr
		}
		return errors.Join(errors.New("gateway: the connector caches did not sync"), cacheErr, adminErr)
	}

	// One listener that stops serving (an accept error) stops the gateway:
	// it must not stay ready with a part of it gone.
	failed := make(chan struct{})
	var failOnce sync.Once
	run := func(f func() error) {
		eg.Go(func() error {
			err := f()
			failOnce.Do(func() { close(failed) })
			return err
		})
	}
	proxy := g.proxyServer()
	servers := []*http.Server{proxy}
	g.ready.Store(true)
	run(func() error { return serve(proxy, g.opts.Listener) })
	if l := g.opts.ReverseTLSListener; l != nil {
		reverse := g.reverseTLSServer()
		servers = append(servers, reverse)
		run(func() error { return serveTLS(reverse, l) })
	}
	var serveErr error
	done := make(chan struct{})
	go func() { serveErr = eg.Wait(); close(done) }()

	select {
	case <-ctx.Done():
	case <-done:
	case <-failed:
	}
	g.shutdown(context.WithoutCancel(ctx), servers)
	closeAdmin()
	<-done
	stopCache()
	g.state.secrets.wait()
	if err := <-cacheDone; err != nil && serveErr == nil {
		serveErr = fmt.Errorf("gateway: informers: %w", err)
	}
	return serveErr
}

func serve(srv *http.Server, l net.Listener) error {
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve on %s: %w", l.Addr(), err)
	}
	return nil
}

// serveTLS is serve with srv.TLSConfig.
func serveTLS(srv *http.Server, l net.Listener) error {
	if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve TLS on %s: %w", l.Addr(), err)
	}
	return nil
}

// shutdown drains the proxy's servers as Start documents.
func (g *Gateway) shutdown(ctx context.Context, servers []*http.Server) {
	g.ready.Store(false)
	if g.opts.ShutdownDelay > 0 {
		delay := time.NewTimer(g.opts.ShutdownDelay)
		<-delay.C
	}
	g.mu.Lock()
	g.draining.Store(true)
	g.mu.Unlock()
	deadline, cancel := context.WithTimeout(ctx, g.opts.ShutdownTimeout)
	defer cancel()
	g.drainTunnels(deadline)
	g.watches.endAll()         // their clients watch again elsewhere
	var stopped sync.WaitGroup // each stops accepting; hijacked tunnels are ours to close
	for _, srv := range servers {
		stopped.Go(func() { _ = srv.Shutdown(deadline) })
	}
	stopped.Wait()
	g.inFlight.waitZero(deadline)
	// Asked to close when idle, tunnels end by themselves once their last
	// answer is written out (a handler returns before HTTP/2 has flushed
	// its last frame): give them a moment, then close what still runs.
	flushed, cancelFlushed := context.WithTimeout(deadline, tunnelFlushGrace)
	defer cancelFlushed()
	g.running.waitZero(flushed)
	g.closeTunnels()
	// The tunnels' goroutines end once their connections are closed.
	ended, cancelEnded := context.WithTimeout(ctx, 5*time.Second)
	defer cancelEnded()
	g.running.waitZero(ended)
	for _, srv := range servers {
		_ = srv.Close()
	}
}

// tunnelFlushGrace is how long drained tunnels may take to write out their
// last answers before they are closed.
const tunnelFlushGrace = time.Second

func (g *Gateway) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !g.ready.Load() {
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	gatherer := g.opts.Gatherer
	if gatherer == nil {
		if reg, ok := g.opts.Registerer.(prometheus.Gatherer); ok {
			gatherer = reg
		}
	}
	if gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}
