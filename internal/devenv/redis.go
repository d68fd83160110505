package devenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"time"
)

// Redis is a redis-server started for the local run.
type Redis struct {
	// URL is its redis:// address.
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts redis-server on a free loopback port without
// persistence, or returns nil when no redis-server is installed.
func StartRedis(ctx context.Context, dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, nil //nolint:nilnil // "not installed" is not an error: the caller falls back to the in-memory cache
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("free port for redis: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &Redis{URL: "redis://127.0.0.1:" + strconv.Itoa(port) + "/0", cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pingRedis(addr) {
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("redis-server on %s exited at start", addr)
		default:
		}
	}
	r.Stop()
	return nil, fmt.Errorf("redis-server on %s did not answer PING", addr)
}

// Stop kills the server and waits for it.
func (r *Redis) Stop() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

func pingRedis(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}
