//go:build integration

package tokens_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

// namespace creates a fresh namespace with a ServiceAccount "runner".
func namespace(t testing.TB) string {
	t.Helper()
	name := cp.NewNamespace(t, "tokens")
	cp.CreateServiceAccount(t, name, "runner")
	return name
}

// sharedKey is the HMAC key the "replicas" of a test share.
func sharedKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

type replica struct {
	*tokens.Pipeline
	reg *prometheus.Registry
}

// count returns the value of connectors_token_lookups_total{tier, result}.
func (r replica) count(tier, result string) float64 {
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "connectors_token_lookups_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["tier"] == tier && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func (r replica) redisUp(t *testing.T) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "connectors_token_redis_up" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("connectors_token_redis_up is not exported")
	return -1
}

// newReplica builds a pipeline on the test control plane; rdb may be nil.
func newReplica(t testing.TB, key []byte, rdb redis.UniversalClient, mod func(*tokens.Options)) replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := tokens.Options{
		Client:     cp.Clientset,
		RESTConfig: cp.Config,
		SharedKey:  key,
		Redis:      rdb,
		Registerer: reg,
		RedisRetry: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := tokens.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return replica{Pipeline: p, reg: reg}
}

func redisClient(t testing.TB, r *testbed.Redis) redis.UniversalClient {
	t.Helper()
	c, err := tokens.NewRedisClient(tokens.RedisOptions{URL: r.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func minter(t testing.TB) *tokens.Minter {
	t.Helper()
	m, err := tokens.NewMinter(tokens.MinterOptions{Client: cp.Clientset})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
