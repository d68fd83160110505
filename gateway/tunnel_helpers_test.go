//go:build integration

package gateway_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	corev1 "k8s.io/api/core/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// plainRecorder is a plain-HTTP upstream that records the headers it receives.
type plainRecorder struct {
	*httptest.Server
	headerLog
}

func newPlainRecorder(t testing.TB) *plainRecorder {
	t.Helper()
	r := &plainRecorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.record(req.Header)
		_, _ = io.WriteString(w, "hello from the plain upstream")
	}))
	t.Cleanup(r.Close)
	return r
}

// checkedConnector is connectorWith the gateway as its published proxy.
func checkedConnector(t testing.TB, e *env, ns, name, address string, sec *corev1.Secret, caPEM []byte) *connectorsv1alpha1.Connector {
	t.Helper()
	return connectorWith(t, ns, name, address, sec, caPEM, "http://"+e.addr)
}

func bearerSecret(token string) *corev1.Secret {
	return &corev1.Secret{Type: connectorsv1alpha1.SecretTypeBearerToken, StringData: map[string]string{connectorsv1alpha1.BearerTokenKey: token}}
}

// recordingTo is a checked connector whose address is the recorder's URL,
// trusting its certificate through caCertSecretRef.
func recordingTo(t testing.TB, e *env, ns, name string, r *recorder, sec *corev1.Secret) *connectorsv1alpha1.Connector {
	t.Helper()
	return checkedConnector(t, e, ns, name, r.URL, sec, r.caPEM())
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// openTunnel sends CONNECT target with the Proxy-Authorization auth and
// returns the connection once the gateway answered 200 (the caller holds the
// tunnel open), or fails.
func openTunnel(t *testing.T, e *env, target, auth string) net.Conn {
	t.Helper()
	conn, resp, body := tryTunnel(t, e, target, "Proxy-Authorization: "+auth+"\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s: %d %q, want 200", target, resp.StatusCode, body)
	}
	return conn
}

// tryTunnel sends CONNECT target with the header lines given; on 200 it
// returns the open connection (closed at the end of the test), else a nil
// connection, the answer and its body.
func tryTunnel(t *testing.T, e *env, target, headerLines string) (net.Conn, *http.Response, string) {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := io.WriteString(conn, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n"+headerLines+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	// Read the head byte by byte so that no buffer takes in what follows
	// it: the tunnel's TLS stream.
	head, err := readHead(conn)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		_ = conn.SetReadDeadline(time.Time{})
		return conn, resp, ""
	}
	// Not a tunnel: read the answer again, with its body.
	if resp, err = http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), conn)), nil); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = conn.Close()
	return nil, resp, string(b)
}

// readHead reads up to the blank line ending a response head.
func readHead(conn net.Conn) (string, error) {
	var head []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := conn.Read(b); err != nil {
			return string(head), err
		}
		head = append(head, b[0])
		if len(head) > 16<<10 {
			return "", errors.New("response head too long")
		}
	}
	return string(head), nil
}

// tlsIn starts TLS inside a tunnel to host, trusting the gateway CA and
// offering only proto ("h2" or "http/1.1").
func tlsIn(t *testing.T, e *env, conn net.Conn, host, proto string) *tls.Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.ca)
	tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: host, NextProtos: []string{proto}})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.HandshakeContext(t.Context()); err != nil {
		t.Fatalf("TLS handshake inside the tunnel: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	if got := tc.ConnectionState().NegotiatedProtocol; got != proto {
		t.Fatalf("negotiated %q inside the tunnel, want %q", got, proto)
	}
	return tc
}

// closeWatch wraps a connection and reports when a read from it ends with
// something other than a timeout: the peer closed it (or, for TLS, sent
// close_notify).
type closeWatch struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func watchClose(c net.Conn) *closeWatch { return &closeWatch{Conn: c, closed: make(chan struct{})} }

func (c *closeWatch) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.once.Do(func() { close(c.closed) })
	}
	return n, err
}

// tunnelClient does requests inside one tunnel, over HTTP/2 or HTTP/1.1.
type tunnelClient struct {
	tc  *tls.Conn
	in  *closeWatch // tc, as the client reads it
	h2  *http2.ClientConn
	br  *bufio.Reader
	url string
}

// dialTunnel opens a tunnel to target (host:port) and speaks proto in it.
func dialTunnel(t *testing.T, e *env, target, auth, proto string) *tunnelClient {
	t.Helper()
	host, _, _ := net.SplitHostPort(target)
	tc := tlsIn(t, e, openTunnel(t, e, target, auth), host, proto)
	c := &tunnelClient{tc: tc, in: watchClose(tc), url: "https://" + target}
	if proto == "h2" {
		cc, err := (&http2.Transport{}).NewClientConn(c.in)
		if err != nil {
			t.Fatal(err)
		}
		c.h2 = cc
	} else {
		c.br = bufio.NewReader(c.in)
	}
	return c
}

// do sends a request inside the tunnel and returns the status and body.
func (c *tunnelClient) do(t *testing.T, path string, header http.Header) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	var resp *http.Response
	if c.h2 != nil {
		resp, err = c.h2.RoundTrip(req)
	} else {
		_ = c.tc.SetDeadline(time.Now().Add(10 * time.Second))
		defer func() { _ = c.tc.SetDeadline(time.Time{}) }()
		if err = req.Write(c.tc); err == nil {
			resp, err = http.ReadResponse(c.br, req)
		}
	}
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// closedWithin says whether the gateway closes the tunnel within d. For
// HTTP/1.1 it reads the connection itself; for HTTP/2 the client's read
// loop does (a GOAWAY on an idle connection ends it too: the gateway
// closes the connection after it, and the client may close it first).
func (c *tunnelClient) closedWithin(d time.Duration) bool {
	if c.h2 == nil {
		go func() { _, _ = io.Copy(io.Discard, c.br) }()
	}
	select {
	case <-c.in.closed:
		return true
	case <-time.After(d):
		return false
	}
}
