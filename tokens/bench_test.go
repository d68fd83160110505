//go:build integration

package tokens_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

// The benchmarks of the validation tiers, each with the baseline it is
// reported against in docs/benchmarks.md (same run, same machine).

func BenchmarkBaselineHMACOfToken(b *testing.B) {
	tok := mustBenchToken(b)
	key := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(tok))
		_ = h.Sum(nil)
	}
}

func BenchmarkValidateLocalHit(b *testing.B) {
	tok := mustBenchToken(b)
	r := newReplica(b, sharedKey(b), nil, nil)
	if _, err := r.Validate(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineRedisGET(b *testing.B) {
	srv := testbed.StartRedis(b)
	rdb := redisClient(b, srv)
	if err := rdb.Set(b.Context(), "k", make([]byte, 300), 0).Err(); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if err := rdb.Get(ctx, "k").Err(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateRedisHit(b *testing.B) {
	t := b
	ns := namespace(t)
	first, _ := cp.PodToken(t, ns, "job-1", "runner")
	second, _ := cp.PodToken(t, ns, "job-2", "runner")
	srv := testbed.StartRedis(b)
	key := sharedKey(t)
	writer := newReplica(t, key, redisClient(t, srv), nil)
	for _, tok := range []tokens.Token{first, second} {
		if _, err := writer.Validate(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
	// A local cache of one entry and two alternating tokens: every lookup
	// misses locally and hits Redis.
	reader := newReplica(t, key, redisClient(t, srv), func(o *tokens.Options) { o.LocalCacheSize = 1 })
	toks := []tokens.Token{first, second}
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := reader.Validate(ctx, toks[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	if hits := reader.count("redis", "hit"); hits < float64(i) {
		b.Fatalf("%v Redis hits for %d lookups: the benchmark did not measure Redis", hits, i)
	}
}

func mustBenchToken(b *testing.B) tokens.Token {
	b.Helper()
	tok, _ := cp.PodToken(b, namespace(b), "job-1", "runner")
	return tok
}
