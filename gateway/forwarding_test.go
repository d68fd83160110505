//go:build integration

package gateway_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
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
