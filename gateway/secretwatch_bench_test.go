//go:build integration

package gateway_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/gateway"
)

// BenchmarkSecretWatchMemory reports the heap and goroutine stacks in use
// per referenced Secret: n connectors, each with its own Secret and so its
// own single-Secret watch in the gateway, against the same n Secrets held
// by one namespace-wide informer (baseline) in the same process.
//
//	go test ./gateway/ -run '^$' -bench SecretWatchMemory -benchtime 1x -count 3
func BenchmarkSecretWatchMemory(b *testing.B) {
	const n = 200
	reg := prometheus.NewRegistry()
	startGateway(b, func(o *gateway.Options) { quiet(o); o.Registerer = reg })
	inUse := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapInuse + m.StackInuse)
	}
	perSecret := func(before int64) float64 { return float64(inUse()-before) / n / 1024 }
	for b.Loop() {
		ns := namespace(b, "secretmem")
		for i := range n {
			sec := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s-%d", i)},
				Type:       connectorsv1alpha1.SecretTypeBearerToken,
				StringData: map[string]string{"token": fmt.Sprintf("token-%d-%0200d", i, 0)},
			}
			if err := cp.Client.Create(b.Context(), sec); err != nil {
				b.Fatal(err)
			}
		}

		before := inUse()
		stop := make(chan struct{})
		f := informers.NewSharedInformerFactoryWithOptions(cp.Clientset, 0, informers.WithNamespace(ns))
		f.Core().V1().Secrets().Informer()
		f.Start(stop)
		f.WaitForCacheSync(stop)
		time.Sleep(500 * time.Millisecond)
		b.ReportMetric(perSecret(before), "KiB/secret-one-informer")
		close(stop)
		f.Shutdown()

		base := gaugeOf(b, reg, "connectors_gateway_secret_watches")
		before = inUse()
		for i := range n {
			c := &connectorsv1alpha1.Connector{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("c-%d", i)},
				Spec: connectorsv1alpha1.ConnectorSpec{
					ConnectorClassName: "k8s", Address: "https://example.invalid",
					Auth: connectorsv1alpha1.ConnectorAuth{Name: "bearerTokenAuth", SecretRef: &connectorsv1alpha1.SecretReference{Name: fmt.Sprintf("s-%d", i)}},
				},
			}
			if err := cp.Client.Create(b.Context(), c); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, "a watch per Secret", func() bool { return gaugeOf(b, reg, "connectors_gateway_secret_watches") == base+n })
		time.Sleep(time.Second) // the watches list and settle
		b.ReportMetric(perSecret(before), "KiB/secret-gateway")
	}
}

// gaugeOf reads an unlabelled gauge or counter from a registry.
func gaugeOf(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
