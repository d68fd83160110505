//go:build integration

package gateway_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// watchClient returns a client for the target apiserver, direct (with the
// Secret's token) or through the gateway (with the pod token as proxy
// password and fake-token upstream, as the mounted kubeconfig does).
func watchClient(b *testing.B, e *env, viaGateway bool, user, podToken, targetToken string) (*http.Client, string) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.Config.CAData)
	bearer := targetToken
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	if viaGateway {
		gwPool := x509.NewCertPool()
		gwPool.AppendCertsFromPEM(e.ca)
		tr.TLSClientConfig.RootCAs = gwPool
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", User: url.UserPassword(user, podToken), Host: e.addr})
		bearer = "fake-token"
	}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, bearer
}

// watch opens a ConfigMap watch and sends the arrival time of each ADDED
// object's name until the body ends.
func watch(b *testing.B, c *http.Client, bearer, ns string, arrivals chan<- arrival, via string) func() {
	req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, apiserver()+"/api/v1/namespaces/"+ns+"/configmaps?watch=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b.Fatalf("watch via %s: status %d", via, resp.StatusCode)
	}
	go func() {
		s := bufio.NewScanner(resp.Body)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			at := time.Now()
			var ev struct {
				Type   string
				Object struct{ Metadata struct{ Name string } }
			}
			if json.Unmarshal(s.Bytes(), &ev) == nil && ev.Type == "ADDED" {
				arrivals <- arrival{name: ev.Object.Metadata.Name, via: via, at: at}
			}
		}
	}()
	return func() { _ = resp.Body.Close() }
}

type arrival struct {
	name, via string
	at        time.Time
}

// BenchmarkWatchEventAddedLatency measures, for events delivered to a
// direct watch and a watch through the gateway at the same time, how much
// later the gateway's copy arrives (p50 and p99 of the difference).
//
//	go test ./gateway/ -run '^$' -bench WatchEventAddedLatency -benchtime 500x
func BenchmarkWatchEventAddedLatency(b *testing.B) {
	e := startGateway(b, quiet)
	ns := namespace(b, "watch")
	target := cp.TargetToken(b, "watcher")
	c := readyConnector(b, ns, "w", apiserver(), target, "http://"+e.addr)
	token, _ := cp.PodToken(b, ns, "job", "default")
	arrivals := make(chan arrival, 1024)
	direct, db := watchClient(b, e, false, "", "", target)
	gw, gb := watchClient(b, e, true, c.Namespace+"/"+c.Name, string(token), "")
	defer watch(b, direct, db, ns, arrivals, "direct")()
	defer watch(b, gw, gb, ns, arrivals, "gateway")()
	time.Sleep(500 * time.Millisecond) // both watches established

	var mu sync.Mutex
	seen := map[string]map[string]time.Time{}
	var added []time.Duration
	done := make(chan struct{})
	go func() {
		for a := range arrivals {
			mu.Lock()
			if seen[a.name] == nil {
				seen[a.name] = map[string]time.Time{}
			}
			seen[a.name][a.via] = a.at
			if d, g := seen[a.name]["direct"], seen[a.name]["gateway"]; !d.IsZero() && !g.IsZero() {
				added = append(added, g.Sub(d))
				if len(added) == b.N {
					close(done)
				}
			}
			mu.Unlock()
		}
	}()
	b.ResetTimer()
	for i := range b.N {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cm-%d", i)}}
		if err := cp.Client.Create(b.Context(), cm); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("only %d of %d events arrived on both watches", len(added), b.N)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(added)
	pct := func(p float64) float64 { return float64(added[int(p*float64(len(added)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "ms-added-p50")
	b.ReportMetric(pct(0.99), "ms-added-p99")
}

// BenchmarkActiveWatchMemory opens 100 watches through the gateway and 100
// direct ones and reports the heap in use per watch (the client side of
// both lives in this process: the difference is the gateway's share).
//
//	go test ./gateway/ -run '^$' -bench ActiveWatchMemory -benchtime 1x -count 3
func BenchmarkActiveWatchMemory(b *testing.B) {
	const n = 100
	e := startGateway(b, quiet)
	ns := namespace(b, "watchmem")
	target := cp.TargetToken(b, "watcher")
	c := readyConnector(b, ns, "w", apiserver(), target, "http://"+e.addr)
	token, _ := cp.PodToken(b, ns, "job", "default")
	for _, via := range []string{"direct", "gateway"} {
		b.Run(via, func(b *testing.B) {
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				sink := make(chan arrival, n)
				var closers []func()
				for range n {
					cl, bearer := watchClient(b, e, via == "gateway", c.Namespace+"/"+c.Name, string(token), target)
					closers = append(closers, watch(b, cl, bearer, ns, sink, via))
				}
				time.Sleep(300 * time.Millisecond)
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse))/n/1024, "KiB/watch")
				for _, cl := range closers {
					cl()
				}
			}
		})
	}
}
