//go:build integration

package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectors-io/connectors/gateway"
)

func TestReadyzFailsFirstOnShutdownWhileOpenTunnelsStillServe(t *testing.T) {
	const delay = 2 * time.Second
	e := startGateway(t, func(o *gateway.Options) { o.ShutdownDelay = delay })
	ns := namespace(t, "readyz")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
	token, _ := cp.PodToken(t, ns, "job", "default")
	c := dialTunnel(t, e, strings.TrimPrefix(up.URL, "https://"), basicAuth(ns+"/rec", string(token)), "h2")
	if resp, body, err := c.do(t, "/api", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the tunnel was not usable: %v %q", err, body)
	}

	e.cancel() // SIGTERM
	stopped := time.Now()
	waitFor(t, "/readyz to fail", func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+e.admin+"/readyz", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	resp, body, err := c.do(t, "/api", nil)
	if d := time.Since(stopped); d >= delay {
		t.Fatalf("/readyz took %s to fail, longer than the shutdown delay", d)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a request through the open tunnel during the shutdown delay failed: %v %q", err, body)
	}
	if err := e.stop(); err != nil {
		t.Errorf("Start returned %v", err)
	}
}

func TestGracefulShutdownFinishesRequestsInFlight(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "drain")
	up := newRecorder(t)
	recordingConnector(t, e, ns, "rec", up, "secret", true)
	token, _ := cp.PodToken(t, ns, "job", "default")
	cl := e.client(t, ns+"/rec", token)
	if resp, _ := get(t, cl, up.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatal("warm-up failed")
	}
	up.setDelay(time.Second)
	result := make(chan string, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, up.URL+"/slow", nil)
		resp, err := cl.Do(req)
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		result <- string(b)
	}()
	time.Sleep(200 * time.Millisecond) // the request is in flight
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }() // SIGTERM
	select {
	case got := <-result:
		if got != "hello from upstream" {
			t.Errorf("the request in flight ended with %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight never finished")
	}
	if err := <-stopped; err != nil {
		t.Errorf("Start returned %v", err)
	}
	if _, err := (&net.Dialer{Timeout: time.Second}).DialContext(t.Context(), "tcp", e.addr); err == nil {
		t.Error("the gateway still accepts connections after shutdown")
	}
}

func TestShutdownAsksIdleTunnelsToCloseWhileRequestsInFlightFinish(t *testing.T) {
	e := startGateway(t, func(o *gateway.Options) { o.ShutdownTimeout = 10 * time.Second })
	ns := namespace(t, "goaway")
	up := newRecorder(t)
	recordingConnector(t, e, ns, "rec", up, "secret", true)
	token, _ := cp.PodToken(t, ns, "job", "default")
	target := strings.TrimPrefix(up.URL, "https://")

	// An idle HTTP/2 tunnel and an idle HTTP/1.1 tunnel, each used once.
	auth := basicAuth(ns+"/rec", string(token))
	h2, h1 := dialTunnel(t, e, target, auth, "h2"), dialTunnel(t, e, target, auth, "http/1.1")
	for _, c := range []*tunnelClient{h2, h1} {
		if resp, _, err := c.do(t, "/", nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("before the shutdown: %v %v", resp, err)
		}
	}

	// A slow request in flight keeps the shutdown waiting for 3 s.
	up.setDelay(3 * time.Second)
	slow := make(chan int, 1)
	go func() {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/slow", nil)
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := e.client(t, ns+"/rec", token).Do(req)
		if err != nil {
			slow <- 0
			return
		}
		_ = resp.Body.Close()
		slow <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()

	closedBy := time.Now().Add(2 * time.Second) // well before the slow request ends
	waitFor(t, "a GOAWAY on the idle HTTP/2 tunnel", func() bool { return h2.h2.State().Closing || h2.h2.State().Closed })
	if time.Now().After(closedBy) {
		t.Error("the idle HTTP/2 tunnel was told to go away only at the end of the shutdown")
	}
	if !h1.closedWithin(time.Until(closedBy)) {
		t.Error("the idle HTTP/1.1 tunnel was not closed by the gateway before the shutdown ended")
	}
	if code := <-slow; code != 200 {
		t.Errorf("the request in flight ended with %d", code)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Start returned %v", err)
	}
}
