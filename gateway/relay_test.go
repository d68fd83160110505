//go:build integration

package gateway_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/connectors-io/connectors/gateway"
)

// echoUpstream is an HTTPS (HTTP/2) upstream that answers /echo with the
// request body, /trailer with a trailer and everything else with the
// Authorization it got.
func echoUpstream(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.record(req.Header)
		switch req.URL.Path {
		case "/echo":
			_, _ = io.Copy(w, req.Body)
		case "/trailer":
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc123")
		default:
			_, _ = io.WriteString(w, req.Header.Get("Authorization"))
		}
	}))
	r.EnableHTTP2 = true
	r.StartTLS()
	t.Cleanup(r.Close)
	return r
}

// Both ways of serving an HTTP/2 tunnel, the relay (Options.HTTP2Relay) and
// net/http's server with a pooled client (the default), must behave the same.
var h2Modes = []struct {
	name string
	mod  func(*gateway.Options)
}{
	{"relayed", func(o *gateway.Options) { o.HTTP2Relay = true }},
	{"served by net/http", nil},
}

func TestAnHTTP2TunnelCarriesBodiesLargerThanEveryFlowControlWindowBothWays(t *testing.T) {
	for _, m := range h2Modes {
		t.Run(m.name, func(t *testing.T) {
			e := startGateway(t, m.mod)
			ns := namespace(t, "flow")
			up := echoUpstream(t)
			connectorWith(t, ns, "echo", up.URL, bearerSecret("secret"), up.caPEM(), "http://"+e.addr)
			token, _ := cp.PodToken(t, ns, "job", "default")
			cl := e.client(t, ns+"/echo", token)
			// 8 parallel streams of 3 MiB each: far beyond the 64 KiB default
			// windows and the 1 MiB ones servers announce.
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := range 8 {
				wg.Go(func() {
					body := bytes.Repeat([]byte{byte('a' + i)}, 3<<20)
					want := sha256.Sum256(body)
					req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, up.URL+"/echo", bytes.NewReader(body))
					if err != nil {
						errs <- err
						return
					}
					resp, err := cl.Do(req)
					if err != nil {
						errs <- err
						return
					}
					defer func() { _ = resp.Body.Close() }()
					got, err := io.ReadAll(resp.Body)
					if err != nil {
						errs <- err
						return
					}
					if resp.ProtoMajor != 2 || sha256.Sum256(got) != want {
						errs <- fmt.Errorf("stream %d: %s, %d bytes back, want HTTP/2 and the same %d bytes", i, resp.Proto, len(got), len(body))
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestRefusedStreamsWithBodiesLeaveTheTunnelUsable(t *testing.T) {
	for _, m := range h2Modes {
		t.Run(m.name, func(t *testing.T) {
			e := startGateway(t, m.mod)
			ns := namespace(t, "credit")
			up := echoUpstream(t)
			connectorWith(t, ns, "echo", up.URL, bearerSecret("secret"), up.caPEM(), "http://"+e.addr)
			token, _ := cp.PodToken(t, ns, "job", "default")
			cl := e.client(t, ns+"/echo", token)
			before := up.count()
			// Refused bodies add up to far more than the connection's window:
			// if the gateway kept the client's credit, the tunnel would stall.
			for i := range 24 {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, up.URL+"/echo", bytes.NewReader(bytes.Repeat([]byte("x"), 60<<10)))
				if err != nil {
					t.Fatal(err)
				}
				req.Host = "other-tenant.example"
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatalf("refused request %d: %v", i, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusMisdirectedRequest {
					t.Fatalf("refused request %d: %d, want 421", i, resp.StatusCode)
				}
			}
			if n := up.count() - before; n != 0 {
				t.Fatalf("%d refused requests reached the upstream", n)
			}
			body := bytes.Repeat([]byte("y"), 200<<10)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, up.URL+"/echo", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				t.Errorf("after the refusals: %d and %d bytes, want 200 and the %d bytes sent", resp.StatusCode, len(got), len(body))
			}
		})
	}
}

func TestAnHTTP2TunnelPassesTrailersAndReplacesTheClientsCredentials(t *testing.T) {
	for _, m := range h2Modes {
		t.Run(m.name, func(t *testing.T) {
			e := startGateway(t, m.mod)
			ns := namespace(t, "trailer")
			up := echoUpstream(t)
			connectorWith(t, ns, "echo", up.URL, bearerSecret("the-real-one"), up.caPEM(), "http://"+e.addr)
			token, _ := cp.PodToken(t, ns, "job", "default")
			cl := e.client(t, ns+"/echo", token)

			resp, body := get(t, cl, up.URL+"/trailer", nil)
			if resp.StatusCode != http.StatusOK || body != "body" || resp.Trailer.Get("X-Checksum") != "abc123" {
				t.Errorf("got %d %q trailer %v, want 200 \"body\" and X-Checksum abc123", resp.StatusCode, body, resp.Trailer)
			}
			resp, body = get(t, cl, up.URL+"/who", http.Header{
				"Authorization": {"Bearer fake-token"}, "Impersonate-User": {"admin"}, "X-Forwarded-For": {"10.0.0.1"},
			})
			h := up.last()
			if resp.StatusCode != http.StatusOK || body != "Bearer the-real-one" || h.Get("Impersonate-User") != "" || h.Get("X-Forwarded-For") != "" {
				t.Errorf("got %d %q, upstream headers %v: want the connector's token only", resp.StatusCode, body, h)
			}
			if strings.Contains(fmt.Sprint(h), string(token)) {
				t.Error("the pod token reached the upstream")
			}
		})
	}
}
