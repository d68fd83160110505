//go:build integration

package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/gateway"
)

// regoClass creates a class whose auth type patAuth takes Secrets of
// secretType with the generator (none if ""), and whose proxy has the
// authExtractor (none if "").
func regoClass(t testing.TB, name string, secretType corev1.SecretType, generator, extractor string) {
	t.Helper()
	class := &connectorsv1alpha1.ConnectorClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: connectorsv1alpha1.ConnectorClassSpec{
			Auth:  connectorsv1alpha1.ClassAuth{Types: []connectorsv1alpha1.AuthType{{Name: "patAuth", SecretType: secretType}}},
			Proxy: &connectorsv1alpha1.ClassProxy{Destination: connectorsv1alpha1.Destination{Ref: &connectorsv1alpha1.KReference{Kind: "Service", Name: "connectors-proxy-service"}}},
		},
	}
	if generator != "" {
		class.Spec.Auth.Types[0].Generator = &connectorsv1alpha1.AuthGenerator{Rego: generator}
	}
	if extractor != "" {
		class.Spec.Proxy.AuthExtractor = &connectorsv1alpha1.AuthExtractor{Rego: extractor}
	}
	if err := cp.Client.Create(t.Context(), class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), class) })
}

// send sends an origin-form request with a body through the reverse proxy.
func send(t *testing.T, e *env, method, host, path, contentType, body string, header http.Header) (int, string) {
	t.Helper()
	status, answer, _ := reverseDo(t, e, method, host, path, contentType, body, header)
	return status, answer
}

// TestARegoGeneratorPutsTheCredentialInTheHeaderTheQueryOrTheBody: the
// generator's auth object, computed from the Secret's data and the
// request, lands where its position says (the body's other fields kept),
// and the pod token goes nowhere upstream.
func TestARegoGeneratorPutsTheCredentialInTheHeaderTheQueryOrTheBody(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "rego-gen")
	o := newOrigin(t)
	tok, _ := cp.PodToken(t, ns, "job", "default")
	for _, tt := range []struct {
		name, rego, method, contentType, body string
		check                                 func(seen) bool
	}{
		{"header", `package proxy
auth := {"position": "header", "auth": {"X-Api-Key": concat(":", [input.data.user, input.data.key]), "X-Method": input.request.method}}`,
			"GET", "", "", func(s seen) bool {
				return s.header.Get("X-Api-Key") == "svc:the-key" && s.header.Get("X-Method") == "GET"
			}},
		{"query", `package proxy
auth = {"position": "query", "auth": {"api_key": input.data.key}} { true }`, // the original's Rego v0 syntax
			"GET", "", "", func(s seen) bool { return s.query == "api_key=the-key&keep=1" }},
		{"body, json", `package proxy
auth := {"position": "body", "contentType": "application/json", "auth": {"token": input.data.key}} if input.request.body.kind == "login"`,
			"POST", "application/json", `{"kind":"login","n":1}`, func(s seen) bool { return s.body == `{"kind":"login","n":1,"token":"the-key"}` }},
		{"body, form", `package proxy
auth := {"position": "body", "auth": {"password": input.data.key}}`,
			"POST", "application/x-www-form-urlencoded", "user=svc", func(s seen) bool { return s.body == "password=the-key&user=svc" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			class := "rego-" + strings.ReplaceAll(strings.ReplaceAll(tt.name, ",", ""), " ", "-")
			regoClass(t, class, "example.com/api-key", tt.rego, "")
			sec := &corev1.Secret{Type: "example.com/api-key", StringData: map[string]string{"user": "svc", "key": "the-key"}}
			connectorOfClass(t, class, ns, class, o.URL, sec, o.caPEM(), "http://"+e.addr)
			status, body := send(t, e, tt.method, "c-"+class+"."+ns, "/api?keep=1", tt.contentType, tt.body, bearer(string(tok)))
			if status != http.StatusOK {
				t.Fatalf("got %d %q", status, body)
			}
			got := o.last(t)
			if !tt.check(got) {
				t.Errorf("the origin got query %q, body %q and headers %v", got.query, got.body, got.header)
			}
			if got.header.Get("Authorization") != "" {
				t.Errorf("the pod's Authorization reached the origin")
			}
		})
	}
}

// TestAnAuthExtractorFindsThePodTokenWhereTheClassSaysAndGitLabTokensGoInPrivateToken:
// the gitlab shape — the pod token in Private-Token, read by the class's
// authExtractor, swapped for the gitlab-pat-auth Secret's token in the
// same header by the built-in rule.
func TestAnAuthExtractorFindsThePodTokenWhereTheClassSaysAndGitLabTokensGoInPrivateToken(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "rego-extract")
	o := newOrigin(t)
	tok, _ := cp.PodToken(t, ns, "job", "default")
	regoClass(t, "rego-gitlab-shape", connectorsv1alpha1.SecretTypeGitLabPAT, "", `package proxy
auth := {"token": input.request.headers["Private-Token"][0]}`)
	sec := &corev1.Secret{Type: connectorsv1alpha1.SecretTypeGitLabPAT, StringData: map[string]string{"token": "glpat-the-real-one"}}
	connectorOfClass(t, "rego-gitlab-shape", ns, "gl", o.URL, sec, o.caPEM(), "http://"+e.addr)

	status, body := send(t, e, "GET", "c-gl."+ns, "/api/v4/projects", "", "", http.Header{"Private-Token": {string(tok)}})
	if status != http.StatusOK {
		t.Fatalf("got %d %q", status, body)
	}
	if got := o.last(t).header.Get("Private-Token"); got != "glpat-the-real-one" {
		t.Errorf("the origin got Private-Token %q, want the Secret's", got)
	}
	t.Run("without the header, Authorization is read", func(t *testing.T) {
		if status, body := send(t, e, "GET", "c-gl."+ns, "/x", "", "", bearer(string(tok))); status != http.StatusOK {
			t.Errorf("got %d %q", status, body)
		}
	})
	t.Run("a wrong token in the header is refused", func(t *testing.T) {
		if status, body := send(t, e, "GET", "c-gl."+ns, "/x", "", "", http.Header{"Private-Token": {"glpat-guess"}}); status != http.StatusUnauthorized {
			t.Errorf("got %d %q, want 401", status, body)
		}
	})
}

// TestARegoPolicyThatLoopsOrFailsIsBoundedAndAnswered502WithTheReason: a
// generator that runs past PolicyTimeout, one that fails at run time and
// one that yields an unknown position each get a 502 that names the class
// and why, in bounded time; nothing reaches the origin; the Secret's data
// is not in the answer.
func TestARegoPolicyThatLoopsOrFailsIsBoundedAndAnswered502WithTheReason(t *testing.T) {
	e := startGateway(t, func(o *gateway.Options) { o.PolicyTimeout = 50 * time.Millisecond })
	ns := namespace(t, "rego-bad")
	o := newOrigin(t)
	tok, _ := cp.PodToken(t, ns, "job", "default")
	for _, tt := range []struct{ name, rego, say string }{
		{"loops", `package proxy
auth := {"position": "header", "auth": {"X": sprintf("%d", [count([x | some x in numbers.range(1, 100000000)])])}}`, "took longer than"},
		{"fails", `package proxy
auth := {"position": "header", "auth": {"X": to_number(input.data.key)}}`, "rego-fails"},
		{"unknown-position", `package proxy
auth := {"position": "cookie", "auth": {"X": input.data.key}}`, "position"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			class := "rego-" + tt.name
			regoClass(t, class, "example.com/api-key", tt.rego, "")
			sec := &corev1.Secret{Type: "example.com/api-key", StringData: map[string]string{"key": "secret-not-a-number"}}
			connectorOfClass(t, class, ns, class, o.URL, sec, o.caPEM(), "http://"+e.addr)
			start := time.Now()
			status, body := send(t, e, "GET", "c-"+class+"."+ns, "/", "", "", bearer(string(tok)))
			if status != http.StatusBadGateway || !strings.Contains(body, "ConnectorClass "+class) || !strings.Contains(body, tt.say) {
				t.Errorf("got %d %q, want 502 naming the class and saying %q", status, body, tt.say)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered after %s", d)
			}
			if strings.Contains(body, "secret-not-a-number") {
				t.Error("the answer quotes the Secret's data")
			}
		})
	}
	if n := o.count(); n != 0 {
		t.Errorf("the origin got %d requests", n)
	}
}
