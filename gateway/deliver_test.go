package gateway_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/connectors-io/connectors/gateway"
)

func TestAnAbsoluteURIRequestToAPlainHTTPTargetCarriesTheConnectorsCredentialAndNoneOfTheClients(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "plain")
	up := newPlainRecorder(t)
	checkedConnector(t, e, ns, "plain", up.URL, bearerSecret("plain-secret"), nil)
	token, _ := cp.PodToken(t, ns, "job", "default")
	via := func(password string) *http.Client {
		proxy := &url.URL{Scheme: "http", User: url.UserPassword(ns+"/plain", password), Host: e.addr}
		tr := &http.Transport{Proxy: http.ProxyURL(proxy)}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}

	resp, body := get(t, via("not-a-token"), up.URL+"/x", nil)
	if resp.StatusCode != http.StatusProxyAuthRequired || up.last() != nil {
		t.Fatalf("a wrong password got %d %q and reached the upstream: %t, want 407 and not reached", resp.StatusCode, body, up.last() != nil)
	}
	resp, body = get(t, via(string(token)), up.URL+"/x", http.Header{
		"Authorization": {"Bearer fake-token"}, "Impersonate-User": {"admin"},
		"Impersonate-Group": {"system:masters"}, "Impersonate-Extra-Scopes": {"all"},
	})
	if resp.StatusCode != http.StatusOK || body != "hello from the plain upstream" {
		t.Fatalf("got %d %q, want 200 from the upstream", resp.StatusCode, body)
	}
	h := up.last()
	if h.Get("Authorization") != "Bearer plain-secret" {
		t.Error("the upstream did not receive the connector's token as Bearer")
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "impersonate-") || strings.EqualFold(k, "Proxy-Authorization") {
			t.Errorf("the upstream received the client's %s", k)
		}
	}
}

func TestABasicAuthSecretIsInjectedAsBasicAuthorization(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "basic")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, &corev1.Secret{
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{corev1.BasicAuthUsernameKey: "robot", corev1.BasicAuthPasswordKey: "s3cr:et"},
	})
	token, _ := cp.PodToken(t, ns, "job", "default")
	resp, body := get(t, e.client(t, ns+"/rec", token), up.URL+"/api", http.Header{"Authorization": {"Bearer fake-token"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if up.last().Get("Authorization") != basicAuth("robot", "s3cr:et") {
		t.Error("the upstream did not receive Basic base64(username:password) of the connector's Secret")
	}
}

func TestOrdinaryRequestsReachTheUpstreamOverHTTP2WhateverTheClientSpeaks(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "uph2")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
	token, _ := cp.PodToken(t, ns, "job", "default")
	target := strings.TrimPrefix(up.URL, "https://")
	for _, proto := range []string{"h2", "http/1.1"} {
		t.Run("a client speaking "+proto+" in the tunnel", func(t *testing.T) {
			c := dialTunnel(t, e, target, basicAuth(ns+"/rec", string(token)), proto)
			resp, body, err := c.do(t, "/api", nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Proto"); got != "HTTP/2.0" {
				t.Errorf("the upstream received %q, want HTTP/2.0", got)
			}
		})
	}
}

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

func TestAProxyUserNamingSeveralConnectorsIsRoutedToTheConnectorOfTheTarget(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "multi")
	a, b := newRecorder(t), newRecorder(t)
	recordingTo(t, e, ns, "a", a, bearerSecret("secret-of-a"))
	recordingTo(t, e, ns, "b", b, bearerSecret("secret-of-b"))
	token, _ := cp.PodToken(t, ns, "job", "default")
	cl := e.client(t, ns+"/a,"+ns+"/b", token)

	if resp, body := get(t, cl, b.URL+"/api", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("b: got %d %q", resp.StatusCode, body)
	}
	if a.last() != nil || b.last().Get("Authorization") != "Bearer secret-of-b" {
		t.Error("a request to b's address did not reach b with b's token alone")
	}
	if resp, body := get(t, cl, a.URL+"/api", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a: got %d %q", resp.StatusCode, body)
	}
	if a.last().Get("Authorization") != "Bearer secret-of-a" {
		t.Error("a request to a's address did not reach a with a's token")
	}
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

var ipv4 = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`)

func TestMetricsHaveBoundedLabelsAndNeverATokenAPodOrAnAddress(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := startGateway(t, func(o *gateway.Options) { o.Registerer = reg })
	ns := namespace(t, "metrics")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
	const pod = "metered-workload"
	token, _ := cp.PodToken(t, ns, pod, "default")
	if resp, body := get(t, e.client(t, ns+"/rec", token), up.URL+"/api", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	e.connect(t, strings.TrimPrefix(up.URL, "https://"), ns+"/rec:not-a-token") // a refusal too

	var labels map[string]string
	waitFor(t, "connectors_gateway_requests_total", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "connectors_gateway_requests_total" && len(mf.GetMetric()) == 1 {
				labels = map[string]string{}
				for _, l := range mf.GetMetric()[0].GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				return true
			}
		}
		return false
	})
	want := map[string]string{"connector": ns + "/rec", "method": "read", "code": "2xx", "protocol": "h2"}
	if len(labels) != len(want) {
		t.Errorf("connectors_gateway_requests_total has labels %v, want exactly %v", labels, want)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("connectors_gateway_requests_total label %s = %q, want %q", k, labels[k], v)
		}
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				switch {
				case strings.Contains(v, string(token)):
					t.Errorf("%s{%s} holds the pod's token", mf.GetName(), l.GetName())
				case strings.Contains(v, pod):
					t.Errorf("%s{%s=%q} names the pod", mf.GetName(), l.GetName(), v)
				case ipv4.MatchString(v) || net.ParseIP(v) != nil || strings.Contains(v, "::1"):
					t.Errorf("%s{%s=%q} holds an IP address", mf.GetName(), l.GetName(), v)
				}
			}
		}
	}
}

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
		resp, err := http.Get("http://" + e.admin + "/readyz")
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
