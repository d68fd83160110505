//go:build integration

package control_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

func postToken(t *testing.T, srv *httptest.Server, ns, name, bearer, body string) (int, []byte) {
	t.Helper()
	return call(t, http.MethodPost, srv.URL+"/v1/namespaces/"+ns+"/connectors/"+name+"/token", bearer, nil, body)
}

// proxyValidator validates proxy tokens as the gateway does.
func proxyValidator(t testing.TB) tokens.Validator {
	t.Helper()
	p, err := tokens.New(tokens.Options{Client: cp.Clientset, RESTConfig: cp.Config, SharedKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokenAPI(t *testing.T) {
	home, other := namespace(t, "tokens"), namespace(t, "tokens")
	cp.CreateServiceAccount(t, home, "runner")
	createConnector(t, home, "k8s-connector", metav1.ConditionTrue)
	noProxy := createConnector(t, home, "no-proxy", metav1.ConditionTrue)
	cp.PublishStatus(t, noProxy, metav1.ConditionTrue, "", "", "")
	createConnector(t, home, "not-ready", metav1.ConditionFalse)
	changed := createConnector(t, home, "changed", metav1.ConditionTrue)
	changed.Spec.Address = "https://192.168.1.101:6443"
	if err := cp.Client.Update(t.Context(), changed); err != nil {
		t.Fatal(err)
	}
	createConnector(t, other, "shared", metav1.ConditionTrue)
	pod := cp.CreatePod(t, home, "caller", "runner")
	caller, _ := cp.RequestToken(t, home, "runner", testbed.TokenOptions{BoundPod: pod})
	captured.Secret(caller)
	srv := serverless(t, nil)

	t.Run("a ServiceAccount caller gets a proxy token that the validator accepts", func(t *testing.T) {
		code, body := postToken(t, srv, home, "k8s-connector", caller, "")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var resp control.TokenResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		if until := time.Until(resp.ExpirationTimestamp); until < 29*time.Minute || until > 31*time.Minute {
			t.Errorf("token expires in %v, want 30m", until)
		}
		captured.Secret(resp.Token)
		id, err := proxyValidator(t).Validate(t.Context(), tokens.Token(resp.Token))
		if err != nil {
			t.Fatalf("the validator refused the issued token: %v", err)
		}
		if id.Namespace != home || id.ServiceAccountName != "runner" || id.PodUID != string(pod.UID) {
			t.Errorf("identity = %+v, want runner bound to the caller's pod", id)
		}
		u, err := url.Parse(resp.ProxyURL)
		if err != nil {
			t.Fatal(err)
		}
		pw, _ := u.User.Password()
		if u.User.Username() != home+"/k8s-connector" || pw != resp.Token || u.Host != "c-k8s-connector."+home+".svc.cluster.local" {
			t.Errorf("proxyURL user %q host %q, want %s/k8s-connector at the connector's proxy", u.User.Username(), u.Host, home)
		}
		if !strings.Contains(resp.ProxyURL, home+"%2Fk8s-connector:") {
			t.Errorf("proxyURL does not URL-encode the user as the kubeconfig does")
		}
	})

	t.Run("a requested lifetime within bounds is granted", func(t *testing.T) {
		code, body := postToken(t, srv, home, "k8s-connector", caller, `{"expirationSeconds": 900}`)
		var resp control.TokenResponse
		if code != http.StatusOK || json.Unmarshal(body, &resp) != nil {
			t.Fatalf("status %d: %s", code, body)
		}
		if until := time.Until(resp.ExpirationTimestamp); until < 14*time.Minute || until > 16*time.Minute {
			t.Errorf("token expires in %v, want 15m", until)
		}
	})

	errorCases := []struct {
		name, ns, connector, bearer, body string
		want                              int
		say                               string
	}{
		{name: "no bearer token is 401", ns: home, connector: "k8s-connector", want: 401, say: "Authorization: Bearer"},
		{name: "an invalid caller token is 401", ns: home, connector: "k8s-connector", bearer: "not-a-token", want: 401, say: "not valid"},
		{name: "a user that is not a ServiceAccount is 403", ns: home, connector: "k8s-connector", bearer: cp.UserToken, want: 403, say: "only ServiceAccounts"},
		{name: "another namespace's connector without RBAC is 403", ns: other, connector: "shared", bearer: caller, want: 403, say: "may not get connector " + other + "/shared"},
		{name: "a missing connector is 404", ns: home, connector: "missing", bearer: caller, want: 404, say: "connector missing not found in namespace " + home},
		{name: "a connector without a proxy address is 409", ns: home, connector: "no-proxy", bearer: caller, want: 409, say: "has no proxy address yet"},
		{name: "a connector that is not Ready is 409 with the gateway's message", ns: home, connector: "not-ready", bearer: caller, want: 409,
			say: "connector " + home + "/not-ready is not Ready: Ready is False (AuthenticationFailed: the target refused the credential"},
		{name: "a connector whose spec changed since its last check is 409 with the gateway's message", ns: home, connector: "changed", bearer: caller, want: 409,
			say: "connector " + home + "/changed changed (generation 2) and has not been checked again yet"},
		{name: "a lifetime that would overflow is 400", ns: home, connector: "k8s-connector", bearer: caller, body: `{"expirationSeconds": 36028797018965768}`, want: 400, say: "between 600 and 3600"},
		{name: "a lifetime below 10 minutes is 400", ns: home, connector: "k8s-connector", bearer: caller, body: `{"expirationSeconds": 60}`, want: 400, say: "between 600 and 3600"},
		{name: "an unknown body field is 400", ns: home, connector: "k8s-connector", bearer: caller, body: `{"lifetime": 60}`, want: 400, say: "must be JSON"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			code, body := postToken(t, srv, tt.ns, tt.connector, tt.bearer, tt.body)
			var e map[string]string
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q is not the JSON error: %v", body, err)
			}
			if code != tt.want || !strings.Contains(e["error"], tt.say) {
				t.Errorf("got %d %q, want %d saying %q", code, e["error"], tt.want, tt.say)
			}
			if tt.bearer != "" && strings.Contains(string(body), tt.bearer) {
				t.Error("the error body contains the caller's token")
			}
		})
	}

	t.Run("a caller over its rate limit gets 429", func(t *testing.T) {
		limited := serverless(t, func(o *control.Options) { o.Rate, o.Burst = 0.01, 2 })
		var codes []int
		for range 3 {
			code, _ := postToken(t, limited, home, "k8s-connector", caller, "")
			codes = append(codes, code)
		}
		if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
			t.Errorf("status codes %v, want [200 200 429]", codes)
		}
	})
}
