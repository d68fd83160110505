//go:build integration

package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// forwarder is a loopback TCP listener that forwards each connection to the
// backend pick names when it arrives; "" refuses it (the connection is
// closed at once, as a cut network or a stopped process does). It stands
// for a Service in front of gateway replicas, or the network between the
// gateway and the API server.
type forwarder struct {
	ln     net.Listener
	pick   func() string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	counts map[string]int // connections forwarded, by backend
	wg     sync.WaitGroup
}

func newForwarder(t testing.TB, pick func() string) *forwarder {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, pick: pick, conns: map[net.Conn]struct{}{}, counts: map[string]int{}}
	f.wg.Go(f.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		f.cutAll()
		f.wg.Wait()
	})
	return f
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() { f.serve(c) })
	}
}

func (f *forwarder) serve(c net.Conn) {
	backend := f.pick()
	if backend == "" {
		_ = c.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	b, err := (&net.Dialer{}).DialContext(ctx, "tcp", backend)
	cancel()
	if err != nil {
		_ = c.Close()
		return
	}
	if !f.track(c, b, backend) {
		return
	}
	defer f.untrack(c, b)
	var halves sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	halves.Go(func() { pipe(b, c) })
	halves.Go(func() { pipe(c, b) })
	halves.Wait()
}

// track records a forwarded pair; false when the listener is closed (the
// pair is closed then).
func (f *forwarder) track(c, b net.Conn, backend string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		_, _ = c.Close(), b.Close()
		return false
	}
	f.conns[c], f.conns[b] = struct{}{}, struct{}{}
	f.counts[backend]++
	return true
}

func (f *forwarder) untrack(c, b net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, _ = c.Close(), b.Close()
	delete(f.conns, c)
	delete(f.conns, b)
}

// cutAll closes every connection forwarded so far.
func (f *forwarder) cutAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		_ = c.Close()
	}
}

// forwarded returns how many connections went to backend.
func (f *forwarder) forwarded(backend string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[backend]
}

// cuttable is a forwarder to one backend that can be cut (every connection
// closed, new ones refused) and restored.
type cuttable struct {
	*forwarder
	down atomic.Bool
}

func newCuttable(t testing.TB, backend string) *cuttable {
	t.Helper()
	c := &cuttable{}
	c.forwarder = newForwarder(t, func() string {
		if c.down.Load() {
			return ""
		}
		return backend
	})
	return c
}

func (c *cuttable) cut() {
	c.down.Store(true)
	c.cutAll()
}

func (c *cuttable) restore() { c.down.Store(false) }

// balancer sends each new connection to the first of its replicas whose
// /readyz answers 200, polled every 50 ms, as a Service's endpoints follow
// readiness; none ready refuses the connection.
type balancer struct {
	*forwarder
	replicas []*env
	ready    []atomic.Bool
}

func newBalancer(t testing.TB, replicas ...*env) *balancer {
	t.Helper()
	lb := &balancer{replicas: replicas, ready: make([]atomic.Bool, len(replicas))}
	poll := func() {
		for i, e := range lb.replicas {
			lb.ready[i].Store(answersReady(e))
		}
	}
	poll()
	stop := make(chan struct{})
	var polling sync.WaitGroup
	polling.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				poll()
			}
		}
	})
	t.Cleanup(func() { close(stop); polling.Wait() })
	lb.forwarder = newForwarder(t, func() string {
		for i, e := range lb.replicas {
			if lb.ready[i].Load() {
				return e.addr
			}
		}
		return ""
	})
	return lb
}

func answersReady(e *env) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.admin+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
