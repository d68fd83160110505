//go:build integration

package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectors-io/connectors/gateway"
)

func TestOnePodOrNamespaceCannotTakeEveryTunnel(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*gateway.Options)
		// other is the pod that must still get a tunnel: "same-ns" (another
		// pod of the namespace) or "other-ns" (a pod of another namespace).
		other, limit string
	}{
		{"a pod beyond MaxTunnelsPerPod gets 503 while another pod of its namespace gets a tunnel", func(o *gateway.Options) { o.MaxTunnelsPerPod = 1 }, "same-ns", "open tunnels of pod "},
		{"a namespace beyond MaxTunnelsPerNamespace gets 503 while a pod of another namespace gets a tunnel", func(o *gateway.Options) { o.MaxTunnelsPerNamespace = 1 }, "other-ns", "open tunnels of namespace "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startGateway(t, tt.mod)
			nsA, nsB := namespace(t, "tenant-a"), namespace(t, "tenant-b")
			upA, upB := newRecorder(t), newRecorder(t)
			recordingTo(t, e, nsA, "rec", upA, bearerSecret("secret"))
			recordingTo(t, e, nsB, "rec", upB, bearerSecret("secret"))
			target := func(up *recorder) string { return strings.TrimPrefix(up.URL, "https://") }
			first, _ := cp.PodToken(t, nsA, "greedy", "default")
			held := openTunnel(t, e, target(upA), basicAuth(nsA+"/rec", string(first)))
			defer func() { _ = held.Close() }()

			second, _ := cp.PodToken(t, nsA, "greedy-2", "default")
			refused := first
			if tt.other == "other-ns" {
				refused = second // the namespace's second pod is the one refused
			}
			conn, resp, body := tryTunnel(t, e, target(upA), "Proxy-Authorization: "+basicAuth(nsA+"/rec", string(refused))+"\r\n")
			if conn != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, tt.limit) {
				t.Fatalf("beyond the limit: %d (Retry-After %q) %q, want 503 with Retry-After naming %q", resp.StatusCode, resp.Header.Get("Retry-After"), body, tt.limit)
			}
			waitFor(t, "the audit line naming the limit", func() bool {
				return strings.Contains(e.logs.Text(), `"reason"="too many `+tt.limit)
			})
			if tt.other == "same-ns" {
				_ = openTunnel(t, e, target(upA), basicAuth(nsA+"/rec", string(second))).Close()
			} else {
				other, _ := cp.PodToken(t, nsB, "neighbour", "default")
				_ = openTunnel(t, e, target(upB), basicAuth(nsB+"/rec", string(other))).Close()
			}
		})
	}
}

func TestOnePodCannotHoldMoreRequestsThanItsLimit(t *testing.T) {
	for _, m := range h2Modes {
		t.Run(m.name, func(t *testing.T) {
			e := startGateway(t, func(o *gateway.Options) {
				if m.mod != nil {
					m.mod(o)
				}
				o.MaxRequestsPerPod = 1
			})
			ns := namespace(t, "inflight")
			up := newRecorder(t)
			recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
			token, _ := cp.PodToken(t, ns, "busy", "default")
			cl := e.client(t, ns+"/rec", token)
			if resp, _ := get(t, cl, up.URL+"/", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("first request: %d", resp.StatusCode)
			}
			up.setDelay(2 * time.Second)
			slow := make(chan int, 1)
			go func() {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/slow", nil)
				resp, err := cl.Do(req)
				if err != nil {
					slow <- 0
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				slow <- resp.StatusCode
			}()
			waitFor(t, "the slow request to reach the upstream", func() bool { return up.count() >= 2 })
			resp, body := get(t, cl, up.URL+"/", nil)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "requests in flight of pod "+ns+"/busy") {
				t.Errorf("a second request in flight: %d %q, want 503 with Retry-After naming the pod's limit", resp.StatusCode, body)
			}
			if code := <-slow; code != http.StatusOK {
				t.Errorf("the slow request: %d, want 200", code)
			}
			up.setDelay(0)
			if resp, body := get(t, cl, up.URL+"/", nil); resp.StatusCode != http.StatusOK {
				t.Errorf("after the slow one ended: %d %q, want 200", resp.StatusCode, body)
			}
		})
	}
}
