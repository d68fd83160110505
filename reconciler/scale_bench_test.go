//go:build integration

package reconciler_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// BenchmarkThousandConnectorsBecomeReady creates 1,000 connectors against
// one local TLS probe target with a watch-mode controller running, and
// reports how long until all are Ready, the time the creates alone took (the
// baseline), and the heap the process grew by. Run it once:
//
//	go test ./reconciler/ -run '^$' -bench ThousandConnectors -benchtime 1x
func BenchmarkThousandConnectorsBecomeReady(b *testing.B) {
	const n = 1000
	cp.InstallK8sClass(b)
	opts := reconcilerOptions(b, recorder(b))
	target := newTLSTarget(b, "bench-token")
	cp.CreateCASecret(b, opts.Namespace, "target-ca", target.caPEM())
	startController(b, opts)
	for b.Loop() {
		ns := namespace(b, "scale")
		bearerSecret(b, ns, "s", "bench-token")
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)

		start := time.Now()
		var wg sync.WaitGroup
		work := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range work {
					connectorFor(b, ns, fmt.Sprintf("c%04d", i), target.URL)
				}
			})
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		created := time.Since(start)

		deadline := time.Now().Add(10 * time.Minute)
		for {
			var list connectorsv1alpha1.ConnectorList
			if err := cp.Client.List(b.Context(), &list, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			ready := 0
			for i := range list.Items {
				if testbed.ReadyTrue(&list.Items[i]) {
					ready++
				}
			}
			if ready == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d connectors Ready after 10 minutes", ready, n)
			}
			time.Sleep(200 * time.Millisecond)
		}
		allReady := time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)

		b.ReportMetric(allReady.Seconds(), "s-until-all-ready")
		b.ReportMetric(created.Seconds(), "s-to-create(baseline)")
		b.ReportMetric(allReady.Seconds()/created.Seconds(), "ready/create")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-growth-MiB")
		b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB")
	}
}

func connectorFor(b *testing.B, ns, name, address string) {
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: connectorsv1alpha1.ConnectorSpec{
			ConnectorClassName: "k8s", Address: address,
			Auth: connectorsv1alpha1.ConnectorAuth{Name: "bearerTokenAuth", SecretRef: &connectorsv1alpha1.SecretReference{Name: "s"}},
		},
	}
	if err := cp.Client.Create(b.Context(), c); err != nil {
		b.Error(err)
	}
}
