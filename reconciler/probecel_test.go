//go:build integration

package reconciler_test

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// sonarTarget is an HTTPS server that answers like SonarQube: a status
// document at /api/system/status and {"valid": …} at
// /api/authentication/validate, always with 200.
type sonarTarget struct {
	*httptest.Server
	status atomic.Value // the "status" of /api/system/status
}

func newSonarTarget(t *testing.T, token string) *sonarTarget {
	t.Helper()
	st := &sonarTarget{}
	st.status.Store("UP")
	st.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/system/status":
			_, _ = io.WriteString(w, `{"id":"x","version":"10.6","status":"`+st.status.Load().(string)+`"}`)
		case "/api/authentication/validate":
			valid := r.Header.Get("Authorization") == "Bearer "+token
			if valid {
				_, _ = io.WriteString(w, `{"valid":true}`)
			} else {
				_, _ = io.WriteString(w, `{"valid":false}`)
			}
		case "/maintenance":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"MAINTENANCE"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	st.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	st.Config.ErrorLog = log.New(io.Discard, "", 0)
	st.StartTLS()
	t.Cleanup(st.Close)
	return st
}

// sonarClass is a class in the shape of the original's sonarqube class,
// its probes judged by CEL.
func sonarClass(t *testing.T, name, livenessPath, livenessCEL, authCEL string) *connectorsv1alpha1.ConnectorClass {
	t.Helper()
	c := testbed.Class(t, "k8s")
	c.Name = name
	c.Spec.LivenessProbe = &connectorsv1alpha1.Probe{HTTP: &connectorsv1alpha1.HTTPProbe{
		Path: livenessPath, Response: &connectorsv1alpha1.ProbeResponse{CEL: livenessCEL},
	}}
	c.Spec.AuthProbes = []connectorsv1alpha1.AuthProbe{{AuthName: "bearerTokenAuth", Probe: connectorsv1alpha1.Probe{HTTP: &connectorsv1alpha1.HTTPProbe{
		Path:        "/api/authentication/validate",
		HTTPHeaders: []connectorsv1alpha1.HTTPHeader{{Name: "Authorization", Value: "{{ if .Secret }}Bearer {{ .Secret.StringData.token }}{{ end }}"}},
		Response:    &connectorsv1alpha1.ProbeResponse{CEL: authCEL},
	}}}}
	return c
}

// TestCELProbesJudgeTheAnswerInsteadOfItsStatus runs probes with
// http.response.cel against a real HTTPS server that answers 200 to
// everything: the expression, not the status, decides; a bad expression is
// a condition message, and the controller goes on.
func TestCELProbesJudgeTheAnswerInsteadOfItsStatus(t *testing.T) {
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	ns := namespace(t, "cel-probes")
	target := newSonarTarget(t, "good-token")
	cp.CreateCASecret(t, opts.Namespace, "sonar-ca", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: target.Certificate().Raw}))
	bearerSecret(t, ns, "good", "good-token")
	bearerSecret(t, ns, "bad", "bad-token")
	const up, valid = "response.body.status == 'UP'", "response.body.valid == true"

	for _, tc := range []struct {
		name, class              string
		livenessPath, live, auth string
		secret                   string
		condition                string
		status                   metav1.ConditionStatus
		say                      string
	}{
		{
			class: "cel-invalid", name: `200 with {"valid": false} makes AuthReady False`, livenessPath: "/api/system/status", live: up, auth: valid, secret: "bad",
			condition: connectorsv1alpha1.ConditionAuthReady, status: metav1.ConditionFalse,
			say: `answered 200 OK, and its response.cel "response.body.valid == true" is false`,
		},
		{
			class: "cel-valid", name: `{"status":"UP"} makes LivenessReady True, and a valid token Ready True`, livenessPath: "/api/system/status", live: up, auth: valid, secret: "good",
			condition: connectorsv1alpha1.ConditionReady, status: metav1.ConditionTrue,
		},
		{
			class: "cel-503", name: "the expression replaces the 2xx rule: a 503 it accepts is LivenessReady True", livenessPath: "/maintenance",
			live: "response.statusCode == 503 && response.headers['Content-Type'][0] == 'application/json'", auth: valid, secret: "good",
			condition: connectorsv1alpha1.ConditionLivenessReady, status: metav1.ConditionTrue,
		},
		{
			class: "cel-bare", name: "the bare names of the original's design (statusCode, bodyJSON) work too", livenessPath: "/api/system/status",
			live: "statusCode == 200 && bodyJSON.status == 'UP'", auth: "bodyJSON.valid", secret: "good",
			condition: connectorsv1alpha1.ConditionReady, status: metav1.ConditionTrue,
		},
		{
			class: "cel-syntax", name: "an expression that does not compile is LivenessReady False saying so", livenessPath: "/api/system/status", live: "response.body.status ==", auth: valid, secret: "good",
			condition: connectorsv1alpha1.ConditionLivenessReady, status: metav1.ConditionFalse,
			say: `its response.cel "response.body.status ==" does not compile: ERROR: <input>:1:24: Syntax error`,
		},
		{
			class: "cel-not-bool", name: "an expression that is not a bool is AuthReady False saying so", livenessPath: "/api/system/status", live: up, auth: "response.statusCode", secret: "good",
			condition: connectorsv1alpha1.ConditionAuthReady, status: metav1.ConditionFalse,
			say: `its response.cel "response.statusCode" yielded int, want a bool`,
		},
		{
			class: "cel-no-key", name: "a key the answer lacks is AuthReady False saying so", livenessPath: "/api/system/status", live: up, auth: "response.body.authenticated", secret: "good",
			condition: connectorsv1alpha1.ConditionAuthReady, status: metav1.ConditionFalse,
			say: "failed on this answer: it reads a key the answer lacks",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.class
			class := sonarClass(t, name, tc.livenessPath, tc.live, tc.auth)
			if err := cp.Client.Create(t.Context(), class); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), class) })
			connector(t, ns, name, name, target.URL, tc.secret)
			c := cp.WaitForConnector(t, ns, name, tc.condition+" "+string(tc.status), testbed.ConditionIs(tc.condition, tc.status, ""))
			if got := connectorsv1alpha1.FindCondition(c.Status.Conditions, tc.condition).Message; !strings.Contains(got, tc.say) {
				t.Errorf("%s message %q, want it to say %q", tc.condition, got, tc.say)
			}
		})
	}
}
