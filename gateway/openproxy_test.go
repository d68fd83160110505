//go:build integration

package gateway_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// canary is a listener that counts every connection: the gateway must never
// dial it.
func canary(t *testing.T) (net.Listener, *atomic.Int64) {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	return l, &n
}

// rawExchange writes raw bytes to the gateway's proxy port and returns the
// status of its first answer.
func rawExchange(t *testing.T, addr, raw string) []string {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	return readStatuses(conn, 1)
}

// readStatuses returns the status of up to n answers, each read within a
// second.
func readStatuses(conn net.Conn, n int) []string {
	br := bufio.NewReader(conn)
	var out []string
	for len(out) < n {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		out = append(out, strconv.Itoa(resp.StatusCode))
	}
	return out
}

func TestTheGatewayIsNoOpenProxy(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "open")
	up := newRecorder(t)
	recordingConnector(t, e, ns, "rec", up, "secret", true)
	token, _ := cp.PodToken(t, ns, "job", "default")
	bystander, dialed := canary(t)
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "https://"))
	_, q, _ := net.SplitHostPort(bystander.Addr().String())
	auth := ns + "/rec:" + string(token)

	// CONNECT targets that are not the connector's address (127.0.0.1:p),
	// however they are spelled: each is refused, and nothing is dialed.
	targets := []string{
		"127.0.0.1:" + q, "localhost:" + q, "localhost:" + p, "LOCALHOST:" + p, "127.0.0.2:" + p, "127.0.0.1:" + q + ":" + p,
		"[::1]:" + p, "[::1]:" + q, "::1:" + p, "[::ffff:127.0.0.1]:" + p, "[::ffff:7f00:1]:" + p, "[0:0:0:0:0:ffff:127.0.0.1]:" + p,
		"[::ffff:127.0.0.1]:" + q, "[::1%25lo]:" + p, "[fe80::1%25lo]:" + p, "[127.0.0.1]:" + p,
		"2130706433:" + p, "0x7f000001:" + p, "0x7f.0.0.1:" + p, "017700000001:" + p, "0177.0.0.1:" + p, "127.1:" + p,
		"127.0.0.01:" + p, "127.000.000.001:" + p, "127.0.0.1.:" + p, "127.0.0.1..:" + p, "%31%32%37.0.0.1:" + p, "127.0.0.1%2e:" + p,
		"0.0.0.0:" + p, "0:" + p, "0.0.0.0:" + q,
		"user@127.0.0.1:" + p, "user:pass@127.0.0.1:" + p, "127.0.0.1:" + p + "@127.0.0.1:" + q, "127.0.0.1:" + q + "#@127.0.0.1:" + p,
		"127.0.0.1:" + p + "/", "127.0.0.1:" + p + "/path", "127.0.0.1:" + p + "?x=1", "127.0.0.1:" + p + "#frag", "https://127.0.0.1:" + p,
		"127.0.0.1", "127.0.0.1:", "127.0.0.1:+" + p, "127.0.0.1:-1", "127.0.0.1:65536", "127.0.0.1:" + strconv.Itoa(65536+mustAtoi(t, p)),
		"*:" + p, ":" + p, "169.254.169.254:80", "10.0.0.1:443", "kubernetes.default.svc:443", "metadata.google.internal:80",
		"c-rec." + ns + ".svc:443", "example.com:443",
	}
	for _, target := range targets {
		t.Run("CONNECT "+target+" is refused", func(t *testing.T) {
			raw := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\nProxy-Authorization: Basic " +
				base64.StdEncoding.EncodeToString([]byte(auth)) + "\r\n\r\n"
			got := rawExchange(t, e.addr, raw)
			if len(got) == 0 || got[0] == "200" {
				t.Errorf("got %v, want a refusal", got)
			}
		})
	}

	// Absolute-URI requests: plain HTTP goes only to plain-HTTP connectors,
	// HTTPS only through CONNECT.
	for _, tt := range []struct{ name, line string }{
		{"a plain GET to a host that is no connector's", "GET http://127.0.0.1:" + q + "/ HTTP/1.1\r\nHost: 127.0.0.1:" + q},
		{"a plain GET to the connector's host over http", "GET http://127.0.0.1:" + p + "/ HTTP/1.1\r\nHost: 127.0.0.1:" + p},
		{"an https absolute URI without CONNECT", "GET https://127.0.0.1:" + p + "/ HTTP/1.1\r\nHost: 127.0.0.1:" + p},
		{"an origin-form request to the proxy", "GET / HTTP/1.1\r\nHost: 127.0.0.1:" + p},
		{"a plain GET whose Host differs from its URI", "GET http://127.0.0.1:" + q + "/ HTTP/1.1\r\nHost: 127.0.0.1:" + p},
	} {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			got := rawExchange(t, e.addr, tt.line+"\r\nProxy-Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte(auth))+"\r\n\r\n")
			if len(got) == 0 || got[0] == "200" {
				t.Errorf("got %v, want a refusal", got)
			}
		})
	}

	// Inside a tunnel to the connector: requests for other hosts, and
	// requests smuggled behind others, never leave the gateway.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.ca)
	other := "127.0.0.1:" + q
	for _, tt := range []struct {
		name, raw string
		first     string // the first answer's status, when it is known
	}{
		{"a Host of another port", "GET / HTTP/1.1\r\nHost: " + other + "\r\n\r\n", "421"},
		{"a Host of another name", "GET / HTTP/1.1\r\nHost: localhost:" + p + "\r\n\r\n", "421"},
		{"an absolute URI of another host", "GET http://" + other + "/ HTTP/1.1\r\nHost: 127.0.0.1:" + p + "\r\n\r\n", "421"},
		{"a request smuggled in a body with Content-Length and Transfer-Encoding",
			"POST / HTTP/1.1\r\nHost: 127.0.0.1:" + p + "\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: " + other + "\r\n\r\n", ""},
		{"a request behind two Content-Lengths", "POST / HTTP/1.1\r\nHost: 127.0.0.1:" + p + "\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET / HTTP/1.1\r\nHost: " + other + "\r\n\r\n", "400"},
		{"a request behind an upgrade the upstream did not accept",
			"GET / HTTP/1.1\r\nHost: 127.0.0.1:" + p + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nHost: " + other + "\r\n\r\n", ""},
	} {
		t.Run("inside a tunnel, "+tt.name+" goes nowhere else", func(t *testing.T) {
			conn := openTunnel(t, e, "127.0.0.1:"+p, basicAuth(ns+"/rec", string(token)))
			tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
			defer func() { _ = tc.Close() }()
			if _, err := io.WriteString(tc, tt.raw); err != nil {
				t.Fatal(err)
			}
			got := readStatuses(tc, 2)
			if tt.first != "" && (len(got) == 0 || got[0] != tt.first) {
				t.Errorf("answers %v, want %s first", got, tt.first)
			}
		})
	}
	if n := dialed.Load(); n != 0 {
		t.Errorf("the gateway dialed the canary %d times", n)
	}
	// Only the smuggling cases' own first requests (to the connector) may
	// have reached the upstream, none for another host.
	hosts := up.hostsSeen()
	for _, h := range hosts {
		if h != "127.0.0.1:"+p {
			t.Errorf("the upstream got a request for Host %q", h)
		}
	}
	if len(hosts) > 2 {
		t.Errorf("%d requests reached the upstream, want at most the two smuggling cases' first ones", len(hosts))
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
