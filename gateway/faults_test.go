//go:build integration

package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/loadtest"
	"github.com/connectors-io/connectors/tokens"
)

// The fault tests put the loadtest's load (package loadtest, as `connectors
// loadtest` runs it) through the gateway, exactly as a mounted kubeconfig
// uses it, break one part mid-run and read the loadtest's counts. Every run
// is bounded by its Duration; the faults are timed from its start.

// faultUpstream is the loadtest's fast upstream on a fixed loopback port,
// stopped and started again on it as a restarted API server would be.
type faultUpstream struct {
	t      testing.TB
	opts   loadtest.UpstreamOptions
	caPEM  []byte
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func startFaultUpstream(t testing.TB, token string) *faultUpstream {
	t.Helper()
	ca, err := loadtest.NewCA("fault upstream")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, _, err := ca.Leaf("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	u := &faultUpstream{t: t, caPEM: ca.CertPEM, opts: loadtest.UpstreamOptions{Token: token, Certificate: leaf, WatchInterval: 100 * time.Millisecond}}
	captured.Secret(token)
	u.start()
	t.Cleanup(u.stop)
	return u
}

func (u *faultUpstream) start() {
	u.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	up, err := loadtest.NewUpstream(ctx, u.opts)
	if err != nil {
		cancel()
		u.t.Fatal(err)
	}
	u.opts.Listen = up.Addr() // the same port when started again
	done := make(chan struct{})
	go func() { _ = up.Start(ctx); close(done) }()
	u.mu.Lock()
	u.cancel, u.done = cancel, done
	u.mu.Unlock()
}

// stop stops the upstream and its connections (within a second).
func (u *faultUpstream) stop() {
	u.mu.Lock()
	cancel, done := u.cancel, u.done
	u.cancel = nil
	u.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (u *faultUpstream) url() string { return "https://" + u.opts.Listen }

// loadThrough is the loadtest's gateway target for a pod token of ns using
// a connector to up, with the kubeconfig's proxy-url at proxy (a replica or
// a balancer in front of replicas).
func loadThrough(t *testing.T, e *env, ns string, up *faultUpstream, proxy string) (*loadtest.Target, tokens.Token) {
	t.Helper()
	c := connectorWith(t, ns, "load", up.url(), bearerSecret(up.opts.Token), up.caPEM, "http://"+proxy)
	token, _ := cp.PodToken(t, ns, "load-job", "default")
	via := *e
	via.addr = proxy
	target, err := loadtest.GatewayTarget(via.kubeconfig(t, c, token), 0)
	if err != nil {
		t.Fatal(err)
	}
	return target, token
}

// runLoads runs each scenario at once and returns their results in order.
func runLoads(t *testing.T, target *loadtest.Target, runs ...loadtest.Options) []*loadtest.Result {
	t.Helper()
	results := make([]*loadtest.Result, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, o := range runs {
		wg.Go(func() { results[i], errs[i] = loadtest.Run(t.Context(), target, o) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("load %d (%s): %v", i, runs[i].Scenario, err)
		}
		t.Log(describe(results[i]))
	}
	return results
}

// describe is a result's one-line summary for failure messages.
func describe(r *loadtest.Result) string {
	return fmt.Sprintf("%s/%s: %d ops, %d errors %v, %d reconnects", r.Scenario, r.Protocol, r.Ops, r.Errors, r.ErrorKinds, r.Reconnects)
}

// warmUp validates the target's token (and shares it in Redis) with a
// short clean run before a fault.
func warmUp(t *testing.T, target *loadtest.Target) {
	t.Helper()
	if r := runLoads(t, target, lasting(warmH2, 300*time.Millisecond))[0]; r.Errors != 0 || r.Ops == 0 {
		t.Fatalf("before the outage: %s", describe(r))
	}
}

// after runs fn once d has passed, unless the test ended first.
func after(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	select {
	case <-time.After(d):
		fn()
	case <-t.Context().Done():
	}
}

var (
	warmH2 = loadtest.Options{Scenario: loadtest.ScenarioWarm, Workers: 4}
	warmH1 = loadtest.Options{Scenario: loadtest.ScenarioWarm, Workers: 4, HTTP1: true}
	// fresh is a new tunnel (CONNECT, TLS) per request: each one checks
	// the token again.
	fresh = loadtest.Options{Scenario: loadtest.ScenarioConnect, Workers: 2}
)

func lasting(o loadtest.Options, d time.Duration) loadtest.Options {
	o.Duration = d
	return o
}

func TestUnderLoadARedisOutageFailsNoRequestOfAValidatedTokenAndSharingResumes(t *testing.T) {
	in := newInstall(t, cp.Config, namespace(t, "install"))
	e := in.start(t, nil)
	ns := namespace(t, "redis-fault")
	up := startFaultUpstream(t, "redis-fault-upstream-token")
	target, _ := loadThrough(t, e, ns, up, e.addr)
	// The token is validated (and shared in Redis) before the outage.
	warmUp(t, target)
	rdb, err := tokens.NewRedisClient(tokens.RedisOptions{URL: in.redis.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	sharedTokens := func() int {
		keys, err := rdb.Keys(context.Background(), "connectors:tokens:t:*").Result()
		if err != nil {
			return -1
		}
		return len(keys)
	}
	if n := sharedTokens(); n < 1 {
		t.Fatalf("before the outage Redis holds %d validated tokens, want at least 1", n)
	}

	// Redis stops 1 s into a 5 s run and comes back (empty: no
	// persistence) 2 s later.
	go after(t, time.Second, func() { in.redis.Stop(t) })
	go after(t, 3*time.Second, func() { in.redis.Restart(t) })
	for _, r := range runLoads(t, target, lasting(warmH2, 5*time.Second), lasting(warmH1, 5*time.Second), lasting(fresh, 5*time.Second)) {
		if r.Errors != 0 || r.Ops < 10 {
			t.Errorf("across the Redis outage: %s; want no error", describe(r))
		}
	}

	// Sharing resumes: a token validated now is shared in the restarted
	// Redis (it came back empty).
	if err := in.redis.Ping(t); err != nil {
		t.Fatal(err)
	}
	ns2 := namespace(t, "redis-back")
	target2, _ := loadThrough(t, e, ns2, up, e.addr)
	waitFor(t, "a token validated after the restart in Redis", func() bool {
		r, err := loadtest.Run(t.Context(), target2, lasting(fresh, 100*time.Millisecond))
		return err == nil && r.Errors == 0 && sharedTokens() >= 1
	})
	if !strings.Contains(strings.ToLower(e.logs.Text()), "redis") {
		t.Error("the gateway logged nothing about the Redis outage")
	}
}

func TestUnderLoadSIGTERMToOneOfTwoReplicasFailsNoRequestAndEndsWatchesCleanly(t *testing.T) {
	in := newInstall(t, cp.Config, namespace(t, "install"))
	// As the chart runs it: /readyz fails first, the Service stops sending
	// new connections during ShutdownDelay, then the replica drains.
	draining := func(o *gateway.Options) { o.ShutdownDelay, o.ShutdownTimeout = time.Second, 5*time.Second }
	a, b := in.start(t, draining), in.start(t, draining)
	lb := newBalancer(t, a, b) // everything to a while it is ready
	ns := namespace(t, "sigterm")
	up := startFaultUpstream(t, "sigterm-upstream-token")
	target, _ := loadThrough(t, a, ns, up, lb.addr())

	stopped := make(chan error, 1)
	var stopTook time.Duration
	go after(t, 2*time.Second, func() {
		if n := lb.forwarded(b.addr); n != 0 {
			t.Errorf("before the SIGTERM %d connections went to the second replica; the test wants all on the first", n)
		}
		start := time.Now()
		err := a.stop() // what SIGTERM does: Start's context ends
		stopTook = time.Since(start)
		stopped <- err
	})
	watch := loadtest.Options{Scenario: loadtest.ScenarioWatch, Streams: 20, Reconnect: true, Duration: 6 * time.Second}
	results := runLoads(t, target, lasting(warmH2, 6*time.Second), lasting(warmH1, 6*time.Second), watch)
	for _, r := range results {
		if r.Errors != 0 || r.Ops < 10 {
			t.Errorf("across the SIGTERM of one replica: %s; want no error", describe(r))
		}
	}
	if w := results[2]; w.Reconnects < int64(watch.Streams) {
		t.Errorf("%d watches ended and watched again, want every one of the %d (ended cleanly by the stopping replica): %s", w.Reconnects, watch.Streams, describe(w))
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("the stopped replica's Start returned %v", err)
		}
		if limit := time.Second + 5*time.Second + 5*time.Second; stopTook > limit {
			t.Errorf("the replica took %s to stop, more than ShutdownDelay + ShutdownTimeout + 5 s", stopTook)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the SIGTERMed replica did not stop")
	}
	if n := lb.forwarded(b.addr); n == 0 {
		t.Error("no connection went to the second replica after the first stopped")
	}
	if !strings.Contains(b.logs.Text(), `"durationMs"=`) {
		t.Error("the second replica served no request")
	}
}

func TestUnderLoadAnUpstreamOutageGivesClear502sAndRecoversWithoutARestart(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "upstream-fault")
	up := startFaultUpstream(t, "upstream-fault-token")
	target, _ := loadThrough(t, e, ns, up, e.addr)

	go after(t, time.Second, up.stop)
	go after(t, 3*time.Second, up.start)
	for _, r := range runLoads(t, target, lasting(warmH2, 5*time.Second), lasting(warmH1, 5*time.Second)) {
		if r.Ops < 10 || r.Errors == 0 {
			t.Errorf("across the upstream outage: %s; want requests before and after it and 502s during it", describe(r))
		}
		for kind := range r.ErrorKinds {
			if kind != "http 502" {
				t.Errorf("across the upstream outage an error of kind %q: %s; want only 502s", kind, describe(r))
			}
		}
	}
	// Recovered, with the same gateway: no error now.
	for _, r := range runLoads(t, target, lasting(warmH2, time.Second), lasting(warmH1, time.Second)) {
		if r.Errors != 0 || r.Ops < 10 {
			t.Errorf("after the upstream came back: %s; want no error", describe(r))
		}
	}

	// What a client reads while it is down: a 502 that names the upstream
	// and why, never the client.
	up.stop()
	cl := &http.Client{Transport: target.NewTransport(false, true), Timeout: 10 * time.Second}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, target.BaseURL+"/api/v1/namespaces/default/pods", nil)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "upstream "+up.opts.Listen) || !strings.Contains(string(body), "refused") {
		t.Errorf("with the upstream down: %d %q; want 502 naming the upstream and the refused connection", resp.StatusCode, body)
	}
	up.start()
}

func TestUnderLoadAnAPIServerOutageKeepsCachedTokensWorkingAndRefusesNewOnesWith503(t *testing.T) {
	// The gateway reaches the API server (informers, Secret watches, token
	// reviews, access reviews, the pod watcher) through a link the test cuts.
	link := newCuttable(t, strings.TrimPrefix(apiserver(), "https://"))
	viaLink := rest.CopyConfig(cp.Config)
	viaLink.Host = "https://" + link.addr()
	in := newInstall(t, viaLink, namespace(t, "install"))
	in.api = viaLink
	e := in.start(t, nil)
	ns := namespace(t, "apiserver-fault")
	up := startFaultUpstream(t, "apiserver-fault-token")
	target, _ := loadThrough(t, e, ns, up, e.addr)
	warmUp(t, target)
	// A pod token the gateway has not seen: minted before the cut, used
	// during it.
	unseen, _ := cp.PodToken(t, ns, "unseen-job", "default")

	go after(t, time.Second, link.cut)
	go after(t, 4*time.Second, link.restore)
	for _, r := range runLoads(t, target, lasting(warmH2, 5*time.Second), lasting(warmH1, 5*time.Second), lasting(fresh, 5*time.Second)) {
		if r.Errors != 0 || r.Ops < 10 {
			t.Errorf("a validated token across the API server outage: %s; want no error", describe(r))
		}
	}

	link.cut()
	resp, body := e.connect(t, up.opts.Listen, ns+"/load:"+string(unseen))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "cannot check the proxy token now") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a new token with the API server down: %d %q (Retry-After %q); want 503 cannot check the proxy token now, with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	link.restore()
	waitFor(t, "the new token accepted once the API server is back", func() bool {
		resp, _ := e.connect(t, up.opts.Listen, ns+"/load:"+string(unseen))
		return resp.StatusCode == http.StatusOK
	})
}
