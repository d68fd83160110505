//go:build integration

package gateway_test

import (
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

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
	bystander, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
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
	if logs := e.logs.Text(); strings.Contains(logs, string(token)) || strings.Contains(logs, string(foreign)) {
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
