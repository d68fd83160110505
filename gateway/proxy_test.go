package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/tokens"
)

// headerLog records the headers of the requests an upstream receives.
type headerLog struct {
	mu      sync.Mutex
	headers []http.Header
	delay   time.Duration // before each answer
}

// record notes h and returns how long to wait before answering.
func (l *headerLog) record(h http.Header) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.headers = append(l.headers, h.Clone())
	return l.delay
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
	conn, err := net.Dial("tcp", e.addr)
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

func TestTheGatewayRefusesWhatItMust(t *testing.T) {
	e := startGateway(t, nil)
	ns, other := namespace(t, "deny"), namespace(t, "other")
	up := newRecorder(t)
	recordingConnector(t, e, ns, "rec", up, "secret-token", true)
	notReady := readyConnector(t, ns, "down", "https://10.255.255.1:6443", "secret-token", "http://"+e.addr)
	setReady(t, notReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed, "liveness probe GET https://10.255.255.1:6443/livez: no answer", "http://"+e.addr)
	token, _ := cp.PodToken(t, ns, "job", "default")
	foreign, _ := cp.PodToken(t, other, "intruder", "default")
	target := strings.TrimPrefix(up.URL, "https://")

	// A listener that must never be dialed.
	bystander, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bystander.Close() }()
	var dialed atomic.Int64
	go func() {
		for {
			c, err := bystander.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			_ = c.Close()
		}
	}()

	tests := []struct {
		name, target, auth string
		want               int
		say                string
	}{
		{name: "no Proxy-Authorization is 407", target: target, want: 407, say: "proxy authentication required"},
		{name: "a wrong password is 407", target: target, auth: ns + "/rec:not-a-token", want: 407, say: "proxy token refused"},
		{name: "a user that names no connector is 407", target: target, auth: "rec:" + string(token), want: 407, say: "<namespace>/<name>"},
		{name: "user and password swapped is 407 and the token is not echoed", target: target, auth: string(token) + ":" + ns + "/rec", want: 407, say: "<namespace>/<name>"},
		{name: "a token of another namespace without RBAC is 403", target: target, auth: ns + "/rec:" + string(foreign), want: 403, say: "may not get connector " + ns + "/rec"},
		{name: "a target that is not the connector's is 403", target: bystander.Addr().String(), auth: ns + "/rec:" + string(token), want: 403, say: "is not an address of connector " + ns + "/rec"},
		{name: "a missing connector is 404", target: target, auth: ns + "/missing:" + string(token), want: 404, say: "connector " + ns + "/missing not found"},
		{name: "a missing connector of another namespace is 403: its existence is not told", target: target, auth: other + "/missing:" + string(token), want: 403, say: "may not get connector " + other + "/missing"},
		{name: "a connector that is not Ready is 503 with its reason", target: "10.255.255.1:6443", auth: ns + "/down:" + string(token), want: 503, say: "ConnectionFailed: liveness probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.connect(t, tt.target, tt.auth)
			if resp.StatusCode != tt.want || !strings.Contains(body, tt.say) {
				t.Errorf("got %d %q, want %d saying %q", resp.StatusCode, body, tt.want, tt.say)
			}
			if tt.want == 407 && resp.Header.Get("Proxy-Authenticate") == "" {
				t.Error("a 407 without Proxy-Authenticate")
			}
			if strings.Contains(body, string(token)) || strings.Contains(body, string(foreign)) {
				t.Error("the answer contains a token")
			}
		})
	}
	if n := dialed.Load(); n != 0 {
		t.Errorf("the gateway dialed a target that is not the connector's %d times", n)
	}
	if logs := e.logs.text(); strings.Contains(logs, string(token)) || strings.Contains(logs, string(foreign)) {
		t.Error("the gateway's log contains a token")
	}

	t.Run("an untrusted upstream certificate is 502 naming the problem", func(t *testing.T) {
		untrusted := newRecorder(t)
		recordingConnector(t, e, ns, "untrusted", untrusted, "secret-token", false)
		resp, body := get(t, e.client(t, ns+"/untrusted", token), untrusted.URL+"/x", nil)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "signed by an unknown authority") {
			t.Errorf("got %d %q, want 502 naming the unknown authority", resp.StatusCode, body)
		}
	})
}

func TestCredentialsAreSwappedAndRotated(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "swap")
	up := newRecorder(t)
	c := recordingConnector(t, e, ns, "rec", up, "first-secret", true)
	token, _ := cp.PodToken(t, ns, "job", "default")
	cl := e.client(t, ns+"/rec", token)

	resp, body := get(t, cl, up.URL+"/api", http.Header{
		"Authorization": {"Bearer fake-token"}, "Impersonate-User": {"admin"}, "Impersonate-Group": {"system:masters"},
	})
	if resp.StatusCode != 200 || body != "hello from upstream" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("the client spoke %s inside the tunnel, want HTTP/2", resp.Proto)
	}
	h := up.last()
	if got := h.Get("Authorization"); got != "Bearer first-secret" {
		t.Errorf("upstream Authorization = %q, want the connector's token", got)
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "impersonate-") || strings.EqualFold(k, "Proxy-Authorization") {
			t.Errorf("upstream received %s", k)
		}
	}

	var sec corev1.Secret
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: c.Spec.Auth.SecretRef.Name}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["token"] = []byte("rotated-secret")
	if err := cp.Client.Update(t.Context(), &sec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rotated token upstream", func() bool {
		get(t, cl, up.URL+"/api", nil)
		return up.last().Get("Authorization") == "Bearer rotated-secret"
	})
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
		resp, err := e.client(t, ns+"/rec", token).Get(up.URL + "/watch")
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
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Error("the gateway still accepts connections after shutdown")
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

func TestTheClientsCredentialsNeverReachTheUpstream(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "nocred")
	up := newRecorder(t)
	// A connector without a Secret: nothing is injected, so whatever
	// arrives upstream came from the client.
	c := recordingConnector(t, e, ns, "rec", up, "unused", true)
	c.Spec.Auth = connectorsv1alpha1.ConnectorAuth{}
	if err := cp.Client.Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	setReady(t, c, metav1.ConditionTrue, "", "", "http://"+e.addr)
	token, _ := cp.PodToken(t, ns, "job", "default")
	resp, _ := get(t, e.client(t, ns+"/rec", token), up.URL+"/", http.Header{
		"Authorization": {"Bearer fake-token"}, "Proxy-Authorization": {"Basic c2VjcmV0"}, "Impersonate-User": {"admin"},
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, h := range []string{"Authorization", "Proxy-Authorization", "Impersonate-User"} {
		if v := up.last().Get(h); v != "" {
			t.Errorf("upstream received the client's %s", h)
		}
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
		resp, err := e.client(t, ns+"/rec", token).Get(up.URL + "/slow")
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
