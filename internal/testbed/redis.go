package testbed

import (
	"testing"

	"github.com/connectors-io/connectors/internal/localcluster"
)

// Redis is a real redis-server on a loopback port, without persistence.
type Redis struct {
	// Addr is host:port of the server.
	Addr string
	r    *localcluster.Redis
}

// StartRedis starts a redis-server that is stopped when the test ends. The
// binary comes from $PATH (`.ci/run` installs it with apt when missing).
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	if !localcluster.HaveRedis() {
		tb.Fatal("testbed: " + localcluster.RedisBinaryMissing)
	}
	r, err := localcluster.StartRedis(tb.Context(), tb.TempDir())
	if err != nil {
		tb.Fatal("testbed: ", err)
	}
	tb.Cleanup(r.Stop)
	return &Redis{Addr: r.Addr, r: r}
}

// URL returns the redis:// URL of the server.
func (r *Redis) URL() string { return r.r.URL() }

// Stop stops the server; Restart starts it again on the same port.
func (r *Redis) Stop(tb testing.TB) {
	tb.Helper()
	r.r.Stop()
}

// Restart starts a stopped server again on the same address.
func (r *Redis) Restart(tb testing.TB) {
	tb.Helper()
	if err := r.r.Restart(tb.Context()); err != nil {
		tb.Fatal("testbed: ", err)
	}
}

// Ping sends PING and checks for PONG.
func (r *Redis) Ping(tb testing.TB) error {
	tb.Helper()
	return localcluster.Ping(tb.Context(), r.Addr)
}
