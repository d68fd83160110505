//go:build integration

package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/connectors-io/connectors/gateway"
)

// Benchmarks of the data path, each next to its baseline in the same run
// (docs/benchmarks.md has the commands and the figures):
//
//	go test ./gateway/ -run '^$' -bench . -benchtime 3000x -count 5

// quiet drops the audit log: the tests' in-memory log sink is not what a
// production logger costs.
func quiet(o *gateway.Options) { o.Logger = logr.Discard() }

func benchClient(b *testing.B, e *env, user, token string, viaGateway bool, roots []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}
	if viaGateway {
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", User: url.UserPassword(user, token), Host: e.addr})
	}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// warmGet sends one GET (with a bearer token, if not empty) and reads the
// whole answer, which must be 200.
func warmGet(b *testing.B, c *http.Client, u, bearer string) {
	req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, u, nil)
	if err != nil {
		b.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
}

// BenchmarkWarmAPIRequest: keep-alive GETs to the test bed's kube-apiserver
// (the upstream the gateway exists for), direct with the connector's token
// (baseline) and through an open tunnel with the pod token, as a mounted
// kubeconfig does; compare ns/op (throughput ratio = direct / gateway).
// /version is the apiserver's cheapest request, a namespace's pod list what
// "kubectl get pods" sends.
func BenchmarkWarmAPIRequest(b *testing.B) {
	e := startGateway(b, quiet)
	ns := namespace(b, "warmapi")
	target := cp.TargetToken(b, "lister")
	c := readyConnector(b, ns, "k", apiserver(), target, "http://"+e.addr)
	token, _ := cp.PodToken(b, ns, "job", "default")
	for _, req := range []struct{ name, path string }{{"version", "/version"}, {"pods", "/api/v1/namespaces/" + ns + "/pods"}} {
		for _, via := range []string{"direct", "gateway"} {
			b.Run(req.name+"/"+via, func(b *testing.B) {
				cl, bearer := watchClient(b, e, via == "gateway", c.Namespace+"/"+c.Name, string(token), target)
				get := func() { warmGet(b, cl, apiserver()+req.path, bearer) }
				get()
				b.ReportAllocs()
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						get()
					}
				})
			})
		}
	}
}

// BenchmarkWarmRequest: keep-alive GETs to an in-process HTTPS upstream that
// does nothing (the worst case for the gateway: its own work is all there is
// to compare), direct (baseline) and through an open tunnel.
func BenchmarkWarmRequest(b *testing.B) {
	e := startGateway(b, quiet)
	ns := namespace(b, "bench")
	up := newRecorder(b)
	recordingConnector(b, e, ns, "rec", up, "secret", true)
	token, _ := cp.PodToken(b, ns, "job", "default")
	for _, bc := range []struct {
		name string
		via  bool
		ca   []byte
	}{{"direct", false, up.caPEM()}, {"gateway", true, e.ca}} {
		b.Run(bc.name, func(b *testing.B) {
			c := benchClient(b, e, ns+"/rec", string(token), bc.via, bc.ca)
			warmGet(b, c, up.URL+"/", "")
			b.ReportAllocs()
			b.SetParallelism(8) // enough clients to keep both cores busy: a throughput, not a latency
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					warmGet(b, c, up.URL+"/", "")
				}
			})
		})
	}
}

// BenchmarkNewTunnel: CONNECT + TLS + first request per iteration, against a
// direct new TLS connection + first request (baseline).
func BenchmarkNewTunnel(b *testing.B) {
	e := startGateway(b, quiet)
	ns := namespace(b, "bench")
	up := newRecorder(b)
	recordingConnector(b, e, ns, "rec", up, "secret", true)
	token, _ := cp.PodToken(b, ns, "job", "default")
	for _, bc := range []struct {
		name string
		via  bool
		ca   []byte
	}{{"direct", false, up.caPEM()}, {"gateway", true, e.ca}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				c := benchClient(b, e, ns+"/rec", string(token), bc.via, bc.ca)
				c.Transport.(*http.Transport).DisableKeepAlives = true
				warmGet(b, c, up.URL+"/", "")
			}
		})
	}
}

// BenchmarkIdleTunnelMemory opens 200 idle tunnels and reports the heap
// growth (heap and goroutine stacks in use) per tunnel, against 200 idle
// direct TLS connections (baseline: the
// client side of both lives in this process too).
func BenchmarkIdleTunnelMemory(b *testing.B) {
	const n = 200
	e := startGateway(b, quiet)
	ns := namespace(b, "bench")
	up := newRecorder(b)
	recordingConnector(b, e, ns, "rec", up, "secret", true)
	token, _ := cp.PodToken(b, ns, "job", "default")
	for _, bc := range []struct {
		name string
		via  bool
		ca   []byte
	}{{"direct", false, up.caPEM()}, {"gateway", true, e.ca}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				clients := make([]*http.Client, n)
				for i := range clients {
					clients[i] = benchClient(b, e, ns+"/rec", string(token), bc.via, bc.ca)
					warmGet(b, clients[i], up.URL+"/", "")
				}
				time.Sleep(200 * time.Millisecond)
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse))/n/1024, "KiB/conn")
				for _, c := range clients {
					c.Transport.(*http.Transport).CloseIdleConnections()
				}
			}
		})
	}
}
