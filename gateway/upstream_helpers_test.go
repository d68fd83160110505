//go:build integration

package gateway_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

// headerLog records the headers of the requests an upstream receives.
type headerLog struct {
	mu      sync.Mutex
	headers []http.Header
	hosts   []string      // the Host of each request
	delay   time.Duration // before each answer
}

// record notes h and returns how long to wait before answering.
func (l *headerLog) record(h http.Header) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.headers = append(l.headers, h.Clone())
	return l.delay
}

// recordHost notes a request's Host.
func (l *headerLog) recordHost(h string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hosts = append(l.hosts, h)
}

func (l *headerLog) hostsSeen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.hosts...)
}

func (l *headerLog) last() http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.headers) == 0 {
		return nil
	}
	return l.headers[len(l.headers)-1]
}

func (l *headerLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.headers)
}

func (l *headerLog) setDelay(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delay = d
}

// recorder is an HTTPS upstream that records the headers it receives.
type recorder struct {
	*httptest.Server
	headerLog
}

func newRecorder(t testing.TB) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.recordHost(req.Host)
		if delay := r.record(req.Header); delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("X-Proto", req.Proto)
		_, _ = io.WriteString(w, "hello from upstream")
	}))
	r.EnableHTTP2 = true
	r.Config.ErrorLog = nil
	r.StartTLS()
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw})
}

// recordingConnector points a Ready connector at the recorder, trusting it
// through caCertSecretRef unless untrusted.
func recordingConnector(t testing.TB, e *env, ns, name string, r *recorder, token string, trusted bool) *connectorsv1alpha1.Connector {
	t.Helper()
	var ca []byte
	if trusted {
		ca = r.caPEM()
	}
	return connectorWith(t, ns, name, r.URL, bearerSecret(token), ca, "http://"+e.addr)
}

// client returns an HTTP client that uses the gateway like kubectl does.
func (e *env) client(t *testing.T, user string, token tokens.Token) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.ca)
	proxy := &url.URL{Scheme: "http", User: url.UserPassword(user, string(token)), Host: e.addr}
	tr := &http.Transport{Proxy: http.ProxyURL(proxy), TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// connect sends a raw CONNECT and returns the gateway's answer.
func (e *env) connect(t *testing.T, target, auth string) (*http.Response, string) {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(auth)) + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, ""
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func get(t *testing.T, c *http.Client, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
