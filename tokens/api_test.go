package tokens_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

// createConnector creates a connector, with a proxy address in its status
// unless proxy is empty.
func createConnector(t *testing.T, ns, name, proxy string) {
	t.Helper()
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       connectorsv1alpha1.ConnectorSpec{ConnectorClassName: "k8s", Address: "https://192.168.1.100:6443"},
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if proxy == "" {
		return
	}
	c.Status.Proxy = &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{URL: proxy}}
	if err := cp.Client.Status().Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

func newTokenAPI(t *testing.T, mod func(*tokens.APIOptions)) *httptest.Server {
	t.Helper()
	callers, err := tokens.NewReviewer(cp.Clientset, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := tokens.APIOptions{Callers: callers, Authorizer: newAuthorizer(t, nil), Minter: minter(t), Connectors: cp.Client}
	if mod != nil {
		mod(&opts)
	}
	api, err := tokens.NewAPI(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	api.Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func postToken(t *testing.T, srv *httptest.Server, ns, name, bearer, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/namespaces/"+ns+"/connectors/"+name+"/token", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestTokenAPI(t *testing.T) {
	home, other := namespace(t), namespace(t)
	createConnector(t, home, "k8s-connector", "http://c-k8s-connector."+home+".svc.cluster.local")
	createConnector(t, home, "no-proxy", "")
	createConnector(t, other, "shared", "http://c-shared."+other+".svc.cluster.local")
	pod := cp.CreatePod(t, home, "caller", "runner")
	caller, _ := cp.RequestToken(t, home, "runner", testbed.TokenOptions{BoundPod: pod})
	srv := newTokenAPI(t, func(o *tokens.APIOptions) { o.Rate, o.Burst = 100, 100 })

	t.Run("a ServiceAccount caller gets a proxy token that the validator accepts", func(t *testing.T) {
		code, body := postToken(t, srv, home, "k8s-connector", caller, "")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var resp tokens.TokenResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		if until := time.Until(resp.ExpirationTimestamp); until < 29*time.Minute || until > 31*time.Minute {
			t.Errorf("token expires in %v, want 30m", until)
		}
		id, err := newReplica(t, sharedKey(t), nil, nil).Validate(t.Context(), tokens.Token(resp.Token))
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
		var resp tokens.TokenResponse
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
		limited := newTokenAPI(t, func(o *tokens.APIOptions) { o.Rate, o.Burst = 0.01, 2 })
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

func TestProxyURL(t *testing.T) {
	tests := []struct {
		name, address, want, wantErr string
	}{
		{name: "the user is namespace/name URL-encoded and the token the password", address: "http://c-x.ns.svc.cluster.local", want: "http://ns%2Fx:tok@c-x.ns.svc.cluster.local"},
		{name: "a port is kept", address: "http://127.0.0.1:8081", want: "http://ns%2Fx:tok@127.0.0.1:8081"},
		{name: "an address without a host is an error", address: "c-x", wantErr: "not an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokens.ProxyURL(tt.address, "ns", "x", "tok")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ProxyURL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
