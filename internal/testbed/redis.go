package testbed

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Redis is a real redis-server on a loopback port, without persistence.
type Redis struct {
	// Addr is host:port of the server.
	Addr string

	bin    string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	out    bytes.Buffer
}

// StartRedis starts a redis-server that is stopped when the test ends. The
// binary comes from $PATH (`.ci/run` installs it with apt when missing).
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal("testbed: redis-server is not installed: run `apt-get install -y redis-server` (.ci/run does)")
	}
	r := &Redis{bin: bin, dir: tb.TempDir()}
	var lastErr error
	for range 3 { // a free port may be taken between choosing and binding it
		port, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = r.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		tb.Fatal(lastErr)
	}
	tb.Cleanup(func() { r.kill() })
	return r
}

// URL returns the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Stop stops the server; Restart starts it again on the same port.
func (r *Redis) Stop(tb testing.TB) {
	tb.Helper()
	r.kill()
}

// Restart starts a stopped server again on the same address.
func (r *Redis) Restart(tb testing.TB) {
	tb.Helper()
	if r.cmd != nil {
		tb.Fatal("testbed: redis-server is still running")
	}
	if err := r.start(); err != nil {
		tb.Fatal(err)
	}
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	r.out.Reset()
	cmd := exec.Command(r.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "yes")
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testbed: start redis-server: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("testbed: redis-server on %s exited (%s): %w", r.Addr, r.out.String(), waitErr)
		default:
		}
		if ping(r.Addr) == nil {
			r.cmd, r.exited = cmd, exited
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("testbed: redis-server on %s did not answer PING within 10s: %s", r.Addr, r.out.String())
}

func (r *Redis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited // the process is killed, so Wait returns promptly
	r.cmd, r.exited = nil, nil
}

// Ping sends PING and checks for PONG.
func (r *Redis) Ping() error { return ping(r.Addr) }

func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return fmt.Errorf("dial redis %s: %w", addr, err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("ping redis %s: %w", addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("ping redis %s: %w", addr, err)
	}
	if line != "+PONG\r\n" {
		return errors.New("redis " + addr + " answered " + strconv.Quote(line) + " to PING")
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testbed: free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("testbed: free port: %w", err)
	}
	return port, nil
}
