package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBinaryMissing is the message of a missing redis-server.
const RedisBinaryMissing = "redis-server is not installed: run `apt-get install -y redis-server` (.ci/run does)"

// Redis is a redis-server on a loopback port, without persistence.
type Redis struct {
	// Addr is host:port of the server.
	Addr string

	bin, dir string
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	out      *bytes.Buffer
}

// HaveRedis reports whether redis-server is on $PATH.
func HaveRedis() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// StartRedis starts redis-server on a free loopback port with dir as its
// working directory, and waits until it answers PING.
func StartRedis(ctx context.Context, dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(RedisBinaryMissing)
	}
	r := &Redis{bin: bin, dir: dir}
	var lastErr error
	for range 3 { // a free port may be taken between choosing and binding it
		port, err := FreePort(ctx)
		if err != nil {
			return nil, err
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = r.start(ctx); lastErr == nil {
			return r, nil
		}
	}
	return nil, lastErr
}

// URL returns the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Restart starts a stopped server again on the same address.
func (r *Redis) Restart(ctx context.Context) error {
	r.mu.Lock()
	running := r.cmd != nil
	r.mu.Unlock()
	if running {
		return errors.New("redis-server is still running")
	}
	return r.start(ctx)
}

func (r *Redis) start(ctx context.Context) error {
	_, port, _ := net.SplitHostPort(r.Addr)
	out := &bytes.Buffer{}
	// The server outlives ctx: Stop ends it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), r.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "yes")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited (%s): %w", r.Addr, out.String(), waitErr)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("start redis-server on %s: %w", r.Addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if Ping(ctx, r.Addr) == nil {
			r.mu.Lock()
			r.cmd, r.exited, r.out = cmd, exited, out
			r.mu.Unlock()
			return nil
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer PING within 10s: %s", r.Addr, out.String())
}

// Stop kills the server and waits for it; Restart starts it again.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited // the process is killed, so Wait returns promptly
	r.cmd, r.exited = nil, nil
}

// Ping sends PING to addr (one attempt, a second at most).
func Ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, PoolSize: 1})
	defer func() { _ = c.Close() }()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis %s: %w", addr, err)
	}
	return nil
}

// FreePort returns a TCP port free on 127.0.0.1 right now.
func FreePort(ctx context.Context) (int, error) {
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	return port, nil
}
