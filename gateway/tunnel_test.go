//go:build integration

package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/gateway"
)

func TestOversizedHeadersAre431AndTheGatewayKeepsServing(t *testing.T) {
	const limit = 4096
	e := startGateway(t, func(o *gateway.Options) { o.MaxHeaderBytes = limit })
	ns := namespace(t, "big")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
	token, _ := cp.PodToken(t, ns, "job", "default")
	target := strings.TrimPrefix(up.URL, "https://")
	auth := basicAuth(ns+"/rec", string(token))
	big := strings.Repeat("a", 4*limit)

	for _, tt := range []struct{ name, lines string }{
		{"a CONNECT with an oversized header is 431", "Proxy-Authorization: " + auth + "\r\nX-Padding: " + big + "\r\n"},
		{"a CONNECT with an oversized Proxy-Authorization is 431", "Proxy-Authorization: Basic " + big + "\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, _ := tryTunnel(t, e, target, tt.lines)
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("got %d, want 431", resp.StatusCode)
			}
		})
	}
	t.Run("a request with an oversized header inside an HTTP/1.1 tunnel is 431 and never reaches the upstream", func(t *testing.T) {
		c := dialTunnel(t, e, target, auth, "http/1.1")
		before := up.count()
		resp, _, err := c.do(t, "/api", http.Header{"X-Padding": {big}})
		if err != nil {
			t.Fatal(err)
		}
		after := up.count()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || after != before {
			t.Errorf("got %d and %d upstream requests, want 431 and none", resp.StatusCode, after-before)
		}
	})
	t.Run("the gateway keeps serving", func(t *testing.T) {
		if resp, body := get(t, e.client(t, ns+"/rec", token), up.URL+"/api", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
}

func TestTheTunnelLimitsAnswer503WithRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*gateway.Options)
		// second: the connector of the CONNECT beyond the limit; free: one
		// that must still get a tunnel ("" if none).
		second, free string
	}{
		{name: "a second tunnel beyond MaxTunnels is refused even for another connector", mod: func(o *gateway.Options) { o.MaxTunnels = 1 }, second: "b"},
		{name: "a second tunnel of a connector beyond MaxTunnelsPerConnector is refused while another connector still gets one", mod: func(o *gateway.Options) { o.MaxTunnelsPerConnector = 1 }, second: "a", free: "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startGateway(t, tt.mod)
			ns := namespace(t, "limit")
			ups := map[string]*recorder{"a": newRecorder(t), "b": newRecorder(t)}
			for name, up := range ups {
				recordingTo(t, e, ns, name, up, bearerSecret("secret"))
			}
			token, _ := cp.PodToken(t, ns, "job", "default")
			target := func(name string) string { return strings.TrimPrefix(ups[name].URL, "https://") }
			auth := func(name string) string { return basicAuth(ns+"/"+name, string(token)) }

			first := openTunnel(t, e, target("a"), auth("a")) // held open
			conn, resp, body := tryTunnel(t, e, target(tt.second), "Proxy-Authorization: "+auth(tt.second)+"\r\n")
			if conn != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("the tunnel beyond the limit got %d (Retry-After %q) %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			if tt.free != "" {
				_ = openTunnel(t, e, target(tt.free), auth(tt.free)).Close()
			}
			_ = first.Close()
			waitFor(t, "the closed tunnel's slot to be free again", func() bool {
				conn, _, _ := tryTunnel(t, e, target(tt.second), "Proxy-Authorization: "+auth(tt.second)+"\r\n")
				if conn != nil {
					_ = conn.Close()
				}
				return conn != nil
			})
		})
	}
}

func TestATunnelClosesWhenItsTokenExpiresPlusTheGrace(t *testing.T) {
	const grace = 2 * time.Second
	var shift atomic.Int64 // the gateway's clock runs this far ahead
	e := startGateway(t, func(o *gateway.Options) {
		o.TokenGrace = grace
		o.Now = func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	})
	ns := namespace(t, "expiry")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
	token, _ := cp.PodToken(t, ns, "job", "default")
	id, err := e.pipeline.Validate(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's clock says the token (plus the grace) has 1.5 s left.
	const left = 1500 * time.Millisecond
	shift.Store(int64(time.Until(id.ExpiresAt.Add(grace)) - left))
	opened := time.Now()

	c := dialTunnel(t, e, strings.TrimPrefix(up.URL, "https://"), basicAuth(ns+"/rec", string(token)), "http/1.1")
	if resp, body, err := c.do(t, "/api", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the tunnel was not usable before its token expired: %v %q", err, body)
	}
	if !c.closedWithin(left + 3*time.Second) {
		t.Fatal("the tunnel is still open 3s after its token expired plus the grace")
	}
	if d := time.Since(opened); d < left-500*time.Millisecond {
		t.Errorf("the tunnel was closed after %s, before its token expired plus the grace", d)
	}
}

func TestAnIdleTunnelIsClosedByTheGateway(t *testing.T) {
	const idle = 500 * time.Millisecond
	e := startGateway(t, func(o *gateway.Options) { o.IdleTimeout = idle })
	ns := namespace(t, "idle")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
	token, _ := cp.PodToken(t, ns, "job", "default")
	for _, proto := range []string{"h2", "http/1.1"} {
		t.Run("an idle "+proto+" tunnel is closed", func(t *testing.T) {
			c := dialTunnel(t, e, strings.TrimPrefix(up.URL, "https://"), basicAuth(ns+"/rec", string(token)), proto)
			if resp, body, err := c.do(t, "/api", nil); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("the tunnel was not usable: %v %q", err, body)
			}
			served := time.Now()
			if !c.closedWithin(idle + 3*time.Second) {
				t.Fatalf("the tunnel is still open %s after its last request", idle+3*time.Second)
			}
			if d := time.Since(served); d < idle-100*time.Millisecond {
				t.Errorf("the tunnel was closed %s after its last request, before the idle timeout", d)
			}
		})
	}
}

func TestADeletedPodsTunnelIsRefused(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "revoke")
	up := newRecorder(t)
	recordingConnector(t, e, ns, "rec", up, "secret", true)
	token, pod := cp.PodToken(t, ns, "job", "default")
	cl := e.client(t, ns+"/rec", token)
	if resp, _ := get(t, cl, up.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d before the deletion", resp.StatusCode)
	}
	// A long request running in the tunnel of its own (a watch, say).
	up.setDelay(5 * time.Second)
	streaming := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/watch", nil)
		if err != nil {
			streaming <- err
			return
		}
		resp, err := e.client(t, ns+"/rec", token).Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
		streaming <- err
	}()
	time.Sleep(300 * time.Millisecond)
	up.setDelay(0)
	deleted := time.Now()
	if err := cp.Clientset.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
refused:
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/", nil)
		resp, err := cl.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		if err == nil && resp.StatusCode == http.StatusForbidden {
			break refused // inside the tunnel
		}
		if err != nil && strings.Contains(err.Error(), "Proxy Authentication Required") {
			break refused // the tunnel was closed and a new CONNECT is refused with 407
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("2s after the pod was deleted its tunnel answers: %v", err)
			}
			t.Fatalf("2s after the pod was deleted its tunnel still answers %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-streaming:
		if err == nil {
			t.Error("the long request of the deleted pod completed")
		}
	case <-time.After(time.Until(deleted.Add(3 * time.Second))):
		t.Error("3s after the pod was deleted a long request in its tunnel still runs")
	}
}

func TestATunnelServesOnlyItsTargetAndItsConnectorAsTheyAreNow(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "pinned")
	up := newRecorder(t)
	c := recordingConnector(t, e, ns, "rec", up, "secret", true)
	token, _ := cp.PodToken(t, ns, "job", "default")
	cl := e.client(t, ns+"/rec", token)
	if resp, _ := get(t, cl, up.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	t.Run("a Host header other than the tunnel's target is 421 and never reaches the upstream", func(t *testing.T) {
		before := up.count()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "internal-admin.other-tenant.example"
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		after := up.count()
		if resp.StatusCode != http.StatusMisdirectedRequest || after != before {
			t.Errorf("status %d and %d upstream requests, want 421 and none", resp.StatusCode, after-before)
		}
	})

	status := func() (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	t.Run("a connector whose spec changed is refused with 503 until its status describes the change", func(t *testing.T) {
		c.Spec.AddressExtensions = []connectorsv1alpha1.AddressExtension{{Name: "alias", Value: "https://alias.example"}}
		if err := cp.Client.Update(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the change to reach the tunnel", func() bool {
			code, body := status()
			return code == http.StatusServiceUnavailable && strings.Contains(body, "has not been checked again")
		})
		setReady(t, c, metav1.ConditionTrue, "", "", "http://"+e.addr)
		if code, body := status(); code != http.StatusOK {
			t.Fatalf("after the status caught up: %d %q", code, body)
		}
	})

	t.Run("a connector deleted while its tunnel is open is refused at the next request", func(t *testing.T) {
		if err := cp.Client.Delete(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the deletion to reach the tunnel", func() bool {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/", nil)
			resp, err := cl.Do(req)
			if err != nil {
				return strings.Contains(err.Error(), "Not Found") // a new CONNECT: 404
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusNotFound
		})
	})
}

func TestARefusalInsideATunnelIsAuditedWithItsReason(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "audit")
	up := newRecorder(t)
	recordingConnector(t, e, ns, "rec", up, "secret", true)
	token, _ := cp.PodToken(t, ns, "job", "default")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "elsewhere.example"
	resp, err := e.client(t, ns+"/rec", token).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("status %d, want 421", resp.StatusCode)
	}
	waitFor(t, "the audit line of the refusal", func() bool {
		return strings.Contains(e.logs.Text(), `"status"=421`) && strings.Contains(e.logs.Text(), `"reason"="this tunnel is for `)
	})
}
