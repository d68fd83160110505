//go:build integration

package control_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/reconciler"
)

// connector creates a k8s connector at the control plane's own address
// whose credential is the bearer token in Secret secret.
func connector(t testing.TB, ns, name, secret string) *connectorsv1alpha1.Connector {
	t.Helper()
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: connectorsv1alpha1.ConnectorSpec{
			ConnectorClassName: "k8s", Address: strings.TrimSuffix(cp.Config.Host, "/"),
			Auth: connectorsv1alpha1.ConnectorAuth{Name: "bearerTokenAuth", SecretRef: &connectorsv1alpha1.SecretReference{Name: secret}},
		},
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// mayGetConnectors lets the trigger caller of token read connectors
// cluster-wide, so that answers carry their conditions.
func mayGetConnectors(t testing.TB, token string) {
	t.Helper()
	id, err := cp.Clientset.AuthenticationV1().TokenReviews().Create(t.Context(), reviewOf(token), metav1.CreateOptions{})
	if err != nil || !id.Status.Authenticated {
		t.Fatalf("review the trigger token: %v", err)
	}
	parts := strings.Split(id.Status.User.Username, ":") // system:serviceaccount:ns:name
	cp.MustKubectl(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: connector-getter\nrules:\n- apiGroups: [connectors.alauda.io]\n  resources: [connectors]\n  verbs: [get]\n", "apply", "-f", "-")
	cp.MustKubectl(t, "", "create", "clusterrolebinding", "getter-"+parts[2]+"-"+parts[3], "--clusterrole=connector-getter", "--serviceaccount="+parts[2]+":"+parts[3])
}

func decodeEvent(t *testing.T, code int, body []byte, want int) control.EventResponse {
	t.Helper()
	if code != want {
		t.Fatalf("status %d, want %d: %s", code, want, body)
	}
	var resp control.EventResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return resp
}

func TestServerlessModeReconcilesPerRequest(t *testing.T) {
	cp.InstallK8sClass(t)
	ns := namespace(t, "serverless")
	bearerSecret(t, ns, "good", cp.TargetToken(t, "reader"))
	bearerSecret(t, ns, "bad", "not-a-valid-token")
	good := connector(t, ns, "good", "good")
	connector(t, ns, "bad", "bad")
	srv := serverless(t, nil)
	caller := triggerCaller(t, "source", true)
	mayGetConnectors(t, caller)

	// As an ApiServerSource in Resource mode sends it: the whole object.
	good.APIVersion, good.Kind = connectorsv1alpha1.GroupVersion.String(), "Connector"
	goodJSON, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a structured CloudEvent about a Connector reconciles it and answers its Ready condition", func(t *testing.T) {
		event := `{"specversion":"1.0","id":"e1","source":"https://127.0.0.1/apis/v1","type":"dev.knative.apiserver.resource.update",` +
			`"datacontenttype":"application/json","data":` + string(goodJSON) + `}`
		code, body := call(t, http.MethodPost, srv.URL+"/", caller, map[string]string{"Content-Type": "application/cloudevents+json"}, event)
		resp := decodeEvent(t, code, body, http.StatusOK)
		if len(resp.Results) != 1 || resp.Results[0].Name != "good" || resp.Results[0].Ready == nil || resp.Results[0].Ready.Status != metav1.ConditionTrue {
			t.Fatalf("results %+v, want good Ready True", resp.Results)
		}
		c := cp.WaitForConnector(t, ns, "good", "Ready True", testbed.ReadyTrue)
		for _, typ := range connectorsv1alpha1.ConnectorConditionTypes() {
			if cd := connectorsv1alpha1.FindCondition(c.Status.Conditions, typ); cd == nil || cd.Status != metav1.ConditionTrue {
				t.Errorf("%s = %+v, want True as in watch mode", typ, cd)
			}
		}
		if c.Status.Proxy == nil || c.Status.Proxy.HTTPAddress.URL != "http://c-good."+ns+".svc.cluster.local" {
			t.Errorf("status.proxy = %+v", c.Status.Proxy)
		}
	})
	t.Run("a binary CloudEvent referencing a Secret reconciles the connectors that use it", func(t *testing.T) {
		headers := map[string]string{
			"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "e2",
			"ce-source": "https://127.0.0.1/api/v1", "ce-type": "dev.knative.apiserver.ref.update",
		}
		code, body := call(t, http.MethodPost, srv.URL+"/", caller, headers, `{"apiVersion":"v1","kind":"Secret","namespace":"`+ns+`","name":"bad"}`)
		resp := decodeEvent(t, code, body, http.StatusOK)
		if len(resp.Results) != 1 || resp.Results[0].Name != "bad" || resp.Results[0].Ready == nil ||
			resp.Results[0].Ready.Status != metav1.ConditionFalse || resp.Results[0].Ready.Reason != connectorsv1alpha1.ReasonAuthenticationFailed {
			t.Fatalf("results %+v, want bad Ready False AuthenticationFailed", resp.Results)
		}
		cp.WaitForEvent(t, ns, "bad", "Warning", connectorsv1alpha1.ReasonAuthenticationFailed)
	})
	t.Run("a ConnectorClass event reconciles every connector of the class", func(t *testing.T) {
		headers := map[string]string{
			"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "e3",
			"ce-source": "https://127.0.0.1/apis", "ce-type": "dev.knative.apiserver.ref.update",
		}
		code, body := call(t, http.MethodPost, srv.URL+"/", caller, headers, `{"apiVersion":"connectors.alauda.io/v1alpha1","kind":"ConnectorClass","name":"k8s"}`)
		resp := decodeEvent(t, code, body, http.StatusOK)
		names := map[string]bool{}
		for _, r := range resp.Results {
			if r.Namespace == ns {
				names[r.Name] = true
			}
		}
		if !names["good"] || !names["bad"] {
			t.Errorf("results %+v, want both connectors of %s", resp.Results, ns)
		}
	})
	t.Run("POST /v1/reconcile answers the Ready condition", func(t *testing.T) {
		code, body := call(t, http.MethodPost, srv.URL+"/v1/reconcile/"+ns+"/good", caller, nil, "")
		var res reconciler.Result
		if code != http.StatusOK || json.Unmarshal(body, &res) != nil || !res.Found || res.Ready == nil || res.Ready.Status != metav1.ConditionTrue {
			t.Fatalf("status %d body %s, want 200 with Ready True", code, body)
		}
	})
	t.Run("POST /v1/reconcile of a missing connector is 404", func(t *testing.T) {
		code, body := call(t, http.MethodPost, srv.URL+"/v1/reconcile/"+ns+"/missing", caller, nil, "")
		if code != http.StatusNotFound || !strings.Contains(string(body), "connector missing not found in namespace "+ns) {
			t.Errorf("got %d %s", code, body)
		}
	})
	malformed := []struct {
		name    string
		headers map[string]string
		body    string
		want    string
	}{
		{name: "a body that is no CloudEvent is 400", headers: map[string]string{"Content-Type": "application/json"}, body: `{"kind":"Connector"}`, want: "not a CloudEvent"},
		{name: "a structured event that is not JSON is 400", headers: map[string]string{"Content-Type": "application/cloudevents+json"}, body: `{"specversion":`, want: "not a CloudEvent"},
		{
			name:    "an event whose data is no object is 400",
			headers: map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "x", "ce-source": "s", "ce-type": "t"},
			body:    `[1,2]`, want: "not a Kubernetes object or reference",
		},
		{
			name:    "an event naming no object is 400",
			headers: map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "x", "ce-source": "s", "ce-type": "t"},
			body:    `{"kind":"Connector"}`, want: "names no kind and name",
		},
	}
	for _, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, http.MethodPost, srv.URL+"/", caller, tt.headers, tt.body)
			if code != http.StatusBadRequest || !strings.Contains(string(body), tt.want) {
				t.Errorf("got %d %s, want 400 saying %q", code, body, tt.want)
			}
		})
	}
	t.Run("an event about another kind is accepted and ignored", func(t *testing.T) {
		headers := map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "x", "ce-source": "s", "ce-type": "t"}
		code, body := call(t, http.MethodPost, srv.URL+"/", caller, headers, `{"apiVersion":"v1","kind":"ConfigMap","namespace":"`+ns+`","name":"x"}`)
		resp := decodeEvent(t, code, body, http.StatusAccepted)
		if !strings.Contains(resp.Ignored, "ConfigMap") {
			t.Errorf("ignored = %q", resp.Ignored)
		}
	})
}

func TestTriggersOnlyTheClusterMayCall(t *testing.T) {
	cp.InstallK8sClass(t)
	ns := namespace(t, "guarded")
	bearerSecret(t, ns, "bad", "not-a-valid-token")
	connector(t, ns, "bad", "bad")
	srv := serverless(t, nil)
	reconcileURL := srv.URL + "/v1/reconcile/" + ns + "/bad"
	event := `{"specversion":"1.0","id":"e1","source":"s","type":"t","datacontenttype":"application/json",` +
		`"data":{"apiVersion":"connectors.alauda.io/v1alpha1","kind":"Connector","name":"bad","namespace":"` + ns + `"}}`
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}

	cp.CreateServiceAccount(t, ns, "apiserver-audience")
	apiToken, _ := cp.RequestToken(t, ns, "apiserver-audience", testbed.TokenOptions{})
	captured.Secret(apiToken)
	unbound := triggerCaller(t, "unbound", false)
	bound := triggerCaller(t, "bound", true)
	getter := triggerCaller(t, "getter", true)
	mayGetConnectors(t, getter)

	probed := func() bool {
		c := cp.WaitForConnector(t, ns, "bad", "read", func(*connectorsv1alpha1.Connector) bool { return true })
		return connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionReady) != nil
	}
	for _, tc := range []struct {
		name, bearer string
		want         int
		say          string
	}{
		{name: "no token is 401", want: http.StatusUnauthorized, say: "Authorization: Bearer"},
		{name: "a token of another audience (the API server's) is 401", bearer: apiToken, want: http.StatusUnauthorized, say: "for the audience connectors-control"},
		{name: "a user who is not a ServiceAccount is refused", bearer: cp.UserToken, want: http.StatusUnauthorized, say: "not valid"},
		{name: "a valid token without the RBAC is 403", bearer: unbound, want: http.StatusForbidden, say: "needs update on connectors/status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range []struct {
				url     string
				headers map[string]string
				body    string
			}{{reconcileURL, nil, ""}, {srv.URL + "/", structured, event}} {
				code, body := call(t, http.MethodPost, req.url, tc.bearer, req.headers, req.body)
				if code != tc.want || !strings.Contains(errorOf(t, body), tc.say) {
					t.Errorf("POST %s: %d %s, want %d saying %q", req.url, code, body, tc.want, tc.say)
				}
				for _, leak := range []string{connectorsv1alpha1.ReasonAuthenticationFailed, "auth probe", "Unauthorized"} {
					if strings.Contains(string(body), leak) && !strings.Contains(tc.say, leak) {
						t.Errorf("the refusal %s holds condition text %q", body, leak)
					}
				}
			}
			if probed() {
				t.Fatal("a refused trigger reconciled the connector")
			}
		})
	}
	t.Run("an authorized caller that may not get the connector gets no condition text", func(t *testing.T) {
		code, body := call(t, http.MethodPost, reconcileURL, bound, nil, "")
		var res reconciler.Result
		if code != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Ready == nil || res.Ready.Status != metav1.ConditionFalse {
			t.Fatalf("status %d body %s, want 200 with Ready False", code, body)
		}
		if res.Ready.Reason != "" || res.Ready.Message != "" {
			t.Errorf("the answer holds condition text: %s", body)
		}
		if !probed() {
			t.Error("the authorized trigger did not reconcile the connector")
		}
	})
	t.Run("an authorized caller that may get the connector gets its condition", func(t *testing.T) {
		code, body := call(t, http.MethodPost, srv.URL+"/", getter, structured, event)
		resp := decodeEvent(t, code, body, http.StatusOK)
		if len(resp.Results) != 1 || resp.Results[0].Ready == nil || resp.Results[0].Ready.Reason != connectorsv1alpha1.ReasonAuthenticationFailed {
			t.Errorf("results %+v, want the Ready condition with its reason", resp.Results)
		}
	})
}

// reviewOf is the TokenReview of a trigger token.
func reviewOf(token string) *authenticationv1.TokenReview {
	return &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{control.DefaultTriggerAudience}}}
}
