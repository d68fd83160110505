package reconciler_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/reconciler"
)

func newControlServer(t *testing.T, opts reconciler.Options, mount ...func(*mux.Router)) *httptest.Server {
	t.Helper()
	s, err := reconciler.NewServer(reconciler.ServerOptions{Reconciler: opts, Mount: mount})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url string, headers map[string]string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestServerlessModeReconcilesPerRequest(t *testing.T) {
	installK8sClass(t)
	opts := reconcilerOptions(t, recorder(t)) // uncached client: no informers
	ns := namespace(t, "serverless")
	apiserver := strings.TrimSuffix(cp.Config.Host, "/")
	bearerSecret(t, ns, "good", targetToken(t))
	bearerSecret(t, ns, "bad", "not-a-valid-token")
	good := connector(t, ns, "good", "k8s", apiserver, "good")
	connector(t, ns, "bad", "k8s", apiserver, "bad")
	srv := newControlServer(t, opts, func(r *mux.Router) {
		r.HandleFunc("/v1/mounted", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("mounted")) })
	})

	// As an ApiServerSource in Resource mode sends it: the whole object.
	good.APIVersion, good.Kind = connectorsv1alpha1.GroupVersion.String(), "Connector"
	goodJSON, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a structured CloudEvent about a Connector reconciles it and answers its Ready condition", func(t *testing.T) {
		event := `{"specversion":"1.0","id":"e1","source":"https://127.0.0.1/apis/v1","type":"dev.knative.apiserver.resource.update",` +
			`"datacontenttype":"application/json","data":` + string(goodJSON) + `}`
		code, body := post(t, srv.URL+"/", map[string]string{"Content-Type": "application/cloudevents+json"}, event)
		resp := decodeEvent(t, code, body, http.StatusOK)
		if len(resp.Results) != 1 || resp.Results[0].Name != "good" || resp.Results[0].Ready == nil || resp.Results[0].Ready.Status != metav1.ConditionTrue {
			t.Fatalf("results %+v, want good Ready True", resp.Results)
		}
		c := waitFor(t, ns, "good", "Ready True", readyTrue)
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
		code, body := post(t, srv.URL+"/", headers, `{"apiVersion":"v1","kind":"Secret","namespace":"`+ns+`","name":"bad"}`)
		resp := decodeEvent(t, code, body, http.StatusOK)
		if len(resp.Results) != 1 || resp.Results[0].Name != "bad" || resp.Results[0].Ready == nil ||
			resp.Results[0].Ready.Status != metav1.ConditionFalse || resp.Results[0].Ready.Reason != connectorsv1alpha1.ReasonAuthenticationFailed {
			t.Fatalf("results %+v, want bad Ready False AuthenticationFailed", resp.Results)
		}
		waitForEvent(t, ns, "bad", "Warning", connectorsv1alpha1.ReasonAuthenticationFailed)
	})
	t.Run("a ConnectorClass event reconciles every connector of the class", func(t *testing.T) {
		headers := map[string]string{
			"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "e3",
			"ce-source": "https://127.0.0.1/apis", "ce-type": "dev.knative.apiserver.ref.update",
		}
		code, body := post(t, srv.URL+"/", headers, `{"apiVersion":"connectors.alauda.io/v1alpha1","kind":"ConnectorClass","name":"k8s"}`)
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
		code, body := post(t, srv.URL+"/v1/reconcile/"+ns+"/good", nil, "")
		var res reconciler.Result
		if code != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Ready == nil || res.Ready.Status != metav1.ConditionTrue {
			t.Fatalf("status %d body %s, want 200 with Ready True", code, body)
		}
	})
	t.Run("POST /v1/reconcile of a missing connector is 404", func(t *testing.T) {
		code, body := post(t, srv.URL+"/v1/reconcile/"+ns+"/missing", nil, "")
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
			code, body := post(t, srv.URL+"/", tt.headers, tt.body)
			if code != http.StatusBadRequest || !strings.Contains(string(body), tt.want) {
				t.Errorf("got %d %s, want 400 saying %q", code, body, tt.want)
			}
		})
	}
	t.Run("an event about another kind is accepted and ignored", func(t *testing.T) {
		headers := map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "x", "ce-source": "s", "ce-type": "t"}
		code, body := post(t, srv.URL+"/", headers, `{"apiVersion":"v1","kind":"ConfigMap","namespace":"`+ns+`","name":"x"}`)
		resp := decodeEvent(t, code, body, http.StatusAccepted)
		if !strings.Contains(resp.Ignored, "ConfigMap") {
			t.Errorf("ignored = %q", resp.Ignored)
		}
	})
	t.Run("mounted routes are served next to the reconcile routes", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/v1/mounted")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if string(b) != "mounted" {
			t.Errorf("mounted route answered %q", b)
		}
	})
}

func decodeEvent(t *testing.T, code int, body []byte, want int) reconciler.EventResponse {
	t.Helper()
	if code != want {
		t.Fatalf("status %d, want %d: %s", code, want, body)
	}
	var resp reconciler.EventResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return resp
}
