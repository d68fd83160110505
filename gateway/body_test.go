//go:build integration

package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bodyUpstream is an HTTPS upstream that reads every request body and
// counts the requests that arrived (their headers) and those whose body it
// read in full.
type bodyUpstream struct {
	*httptest.Server
	mu       sync.Mutex
	arrived  int
	complete int
	bodies   []string // the complete bodies, with their Content-Length
}

func newBodyUpstream(t *testing.T) *bodyUpstream {
	t.Helper()
	u := &bodyUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.arrived++
		u.mu.Unlock()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return // never a complete request
		}
		u.mu.Lock()
		u.complete++
		u.bodies = append(u.bodies, fmt.Sprintf("%d:%s", r.ContentLength, b))
		u.mu.Unlock()
		_, _ = io.WriteString(w, "read")
	}))
	u.EnableHTTP2 = true
	u.StartTLS()
	t.Cleanup(u.Close)
	return u
}

func (u *bodyUpstream) counts() (arrived, complete int, bodies []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.arrived, u.complete, append([]string(nil), u.bodies...)
}

func (u *bodyUpstream) hostport() string { return strings.TrimPrefix(u.URL, "https://") }

func TestAMalformedRequestBodyIsTheClientsErrorAndNothingOfItReachesTheUpstream(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "body")
	up := newBodyUpstream(t)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw})
	connectorWith(t, ns, "up", up.URL, bearerSecret("upstream-credential"), caPEM, "http://"+e.addr)
	token, _ := cp.PodToken(t, ns, "job", "default")
	auth := basicAuth(ns+"/up", string(token))
	host := up.hostport()

	// http1 sends raw bytes inside a fresh tunnel and returns the status.
	http1 := func(t *testing.T, raw string, closeWrite bool) (int, string) {
		t.Helper()
		tc := tlsIn(t, e, openTunnel(t, e, host, auth), "127.0.0.1", "http/1.1")
		if _, err := io.WriteString(tc, raw); err != nil {
			t.Fatal(err)
		}
		if closeWrite {
			_ = tc.CloseWrite()
		}
		_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	head := "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: " + host + "\r\n"

	for _, tt := range []struct{ name, raw string }{
		{"a negative chunk size", head + "Transfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n"},
		{"a hex-prefixed chunk size", head + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"},
		{"a chunk size that overflows", head + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
		{"a bare LF after the chunk size", head + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"},
		{"a chunk longer than its size", head + "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run("HTTP/1.1 with "+tt.name+" is 400", func(t *testing.T) {
			before, _, _ := up.counts()
			status, body := http1(t, tt.raw, false)
			if status != http.StatusBadRequest || !strings.Contains(body, "the request body is malformed") {
				t.Errorf("got %d %q, want 400 naming the malformed body", status, body)
			}
			if arrived, _, _ := up.counts(); arrived != before {
				t.Errorf("the upstream received %d request(s); want none", arrived-before)
			}
		})
	}

	t.Run("HTTP/1.1 with a body shorter than its Content-Length is 400", func(t *testing.T) {
		before, _, _ := up.counts()
		status, body := http1(t, head+"Content-Length: 10\r\n\r\nhello", true)
		if status != http.StatusBadRequest || !strings.Contains(body, "the request body is malformed") {
			t.Errorf("got %d %q, want 400 naming the malformed body", status, body)
		}
		if arrived, _, _ := up.counts(); arrived != before {
			t.Errorf("the upstream received %d request(s); want none", arrived-before)
		}
	})

	t.Run("a well-formed chunked body goes upstream whole, with its length", func(t *testing.T) {
		_, before, _ := up.counts()
		status, body := http1(t, head+"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", false)
		if status != http.StatusOK || body != "read" {
			t.Fatalf("got %d %q, want 200 from the upstream", status, body)
		}
		_, complete, bodies := up.counts()
		if complete != before+1 || bodies[len(bodies)-1] != "11:hello world" {
			t.Errorf("the upstream read %v, want one more body %q", bodies, "11:hello world")
		}
	})

	t.Run("a long chunked body that breaks after the first 64 KiB is 400 and never complete upstream", func(t *testing.T) {
		_, before, _ := up.counts()
		chunk := strings.Repeat("a", 32<<10)
		raw := head + "Transfer-Encoding: chunked\r\n\r\n"
		for range 4 {
			raw += strconv.FormatInt(int64(len(chunk)), 16) + "\r\n" + chunk + "\r\n"
		}
		status, body := http1(t, raw+"zz\r\n", false)
		if status != http.StatusBadRequest || !strings.Contains(body, "the request body is malformed") {
			t.Errorf("got %d %q, want 400 naming the malformed body", status, body)
		}
		if _, complete, _ := up.counts(); complete != before {
			t.Errorf("the upstream read %d complete body(ies); want none", complete-before)
		}
	})

	t.Run("a long well-formed body streams upstream whole", func(t *testing.T) {
		_, before, _ := up.counts()
		payload := strings.Repeat("b", 200<<10)
		status, body := http1(t, head+"Content-Length: "+strconv.Itoa(len(payload))+"\r\n\r\n"+payload, false)
		if status != http.StatusOK || body != "read" {
			t.Fatalf("got %d %q, want 200 from the upstream", status, body)
		}
		_, complete, bodies := up.counts()
		if complete != before+1 || bodies[len(bodies)-1] != strconv.Itoa(len(payload))+":"+payload {
			t.Errorf("the upstream did not read the body whole")
		}
	})

	t.Run("HTTP/2 DATA shorter than its content-length never reaches the upstream complete", func(t *testing.T) {
		arrivedBefore, completeBefore, _ := up.counts()
		tc := tlsIn(t, e, openTunnel(t, e, host, auth), "127.0.0.1", "h2")
		status, reset := h2ShortBody(t, tc, host)
		if status != http.StatusBadRequest && reset == 0 {
			t.Errorf("got status %d and no reset; want 400 or a stream reset", status)
		}
		arrived, complete, _ := up.counts()
		if complete != completeBefore {
			t.Errorf("the upstream read %d complete body(ies); want none", complete-completeBefore)
		}
		// The default path reads the body first: nothing reaches the
		// upstream. The HTTP/2 relay forwards frames as they come: the
		// upstream sees the headers, then a reset.
		if !relayed() && arrived != arrivedBefore {
			t.Errorf("the upstream received %d request(s); want none", arrived-arrivedBefore)
		}
	})

	waitFor(t, "the audit lines of the malformed bodies", func() bool {
		return strings.Count(e.logs.Text(), `"status"=400`) >= 8 && strings.Contains(e.logs.Text(), `"reason"="the request body is malformed: `)
	})
}

// relayed says whether the suite runs through the HTTP/2 relay.
func relayed() bool { return os.Getenv("CONNECTORS_TEST_HTTP2_RELAY") == "1" }

// h2ShortBody sends, as HTTP/2 frames, a POST declaring 10 bytes of body and
// sending 5, and returns the answer's status or the stream's reset code.
func h2ShortBody(t *testing.T, c *tls.Conn, host string) (status int, reset http2.ErrCode) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", host}, {":path", "/api/v1/namespaces/default/configmaps"}, {"content-length", "10"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, true, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatal("no answer to the short body within 10s")
			}
			return status, reset
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				status, _ = strconv.Atoi(f.PseudoValue("status"))
				if f.StreamEnded() {
					return status, reset
				}
			}
		case *http2.DataFrame:
			if f.StreamID == 1 && f.StreamEnded() {
				return status, reset
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return status, f.ErrCode
			}
		case *http2.GoAwayFrame:
			// The streams it lets through still end: read on.
		}
	}
}
