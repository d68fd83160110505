//go:build integration

package reconciler_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/reconciler"
)

func TestTheQuickStartConnectorBecomesReady(t *testing.T) {
	cp.InstallK8sClass(t)
	opts := reconcilerOptions(t, recorder(t))
	gatewayCA, err := testbed.SelfSignedCA("gateway CA")
	if err != nil {
		t.Fatal(err)
	}
	opts.ProxyCA = func() ([]byte, error) { return gatewayCA, nil }
	startController(t, opts)
	gateway := "connectors-proxy-service." + opts.Namespace + ".svc.cluster.local" // the class's proxy, in the install namespace
	ns := namespace(t, "k8s-connector-demo")
	bearerSecret(t, ns, "k8s-secret", cp.TargetToken(t, "reader"))
	connector(t, ns, "k8s-connector", "k8s", cp.Config.Host, "k8s-secret")

	c := cp.WaitForConnector(t, ns, "k8s-connector", "Ready True", testbed.ReadyTrue)
	for _, typ := range connectorsv1alpha1.ConnectorConditionTypes() {
		if cd := connectorsv1alpha1.FindCondition(c.Status.Conditions, typ); cd == nil || cd.Status != metav1.ConditionTrue {
			t.Errorf("%s = %+v, want True", typ, cd)
		}
	}
	wantURL := "http://c-k8s-connector." + ns + ".svc.cluster.local"
	if c.Status.Proxy == nil || c.Status.Proxy.HTTPAddress == nil || c.Status.Proxy.HTTPAddress.URL != wantURL {
		t.Errorf("status.proxy = %+v, want httpAddress.url %s", c.Status.Proxy, wantURL)
	} else if ca := c.Status.Proxy.HTTPAddress.CACerts; ca == nil || *ca != string(gatewayCA) {
		t.Errorf("status.proxy.httpAddress.CACerts is not the gateway CA")
	}
	out := cp.MustKubectl(t, "", "get", "connector", "k8s-connector", "-n", ns, "--no-headers")
	if row := strings.Fields(out); len(row) < 4 || row[1] != "k8s" || row[2] != cp.Config.Host || row[3] != "True" {
		t.Errorf("kubectl get connector printed %q, want CLASS k8s, the address and READY True", out)
	}

	var svc corev1.Service
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "c-k8s-connector"}, &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName || svc.Spec.ExternalName != gateway ||
		len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
		t.Errorf("service spec = %+v, want an ExternalName alias of the gateway on port 80", svc.Spec)
	}
	if !metav1.IsControlledBy(&svc, c) {
		t.Errorf("service owner references = %+v, want the connector as controller (garbage collection)", svc.OwnerReferences)
	}
	if svc.Labels[reconciler.ConnectorLabel] != "k8s-connector" {
		t.Errorf("service labels = %v, want the connector named", svc.Labels)
	}
	cp.WaitForEvent(t, ns, "k8s-connector", corev1.EventTypeNormal, connectorsv1alpha1.ConditionReady)

	t.Run("a deleted Service is recreated", func(t *testing.T) {
		if err := cp.Client.Delete(t.Context(), &svc); err != nil {
			t.Fatal(err)
		}
		waitForService(t, ns, "c-k8s-connector", func(s *corev1.Service) bool { return s.UID != svc.UID })
	})
	t.Run("a Service changed by hand is repaired", func(t *testing.T) {
		var cur corev1.Service
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "c-k8s-connector"}, &cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec.ExternalName = "evil.example.com"
		if err := cp.Client.Update(t.Context(), &cur); err != nil {
			t.Fatal(err)
		}
		waitForService(t, ns, "c-k8s-connector", func(s *corev1.Service) bool {
			return s.Spec.ExternalName == gateway
		})
	})
}

func waitForService(t *testing.T, ns, name string, check func(*corev1.Service) bool) {
	t.Helper()
	cp.WaitForConnector(t, ns, strings.TrimPrefix(name, "c-"), "service "+name+" settles", func(*connectorsv1alpha1.Connector) bool {
		var s corev1.Service
		return cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &s) == nil && check(&s)
	})
}

// TestFailuresAreExplainedAndRecover drives each failure path with one
// controller, checks the documented reason, a message for humans and a
// Warning event, then fixes the cause and waits for Ready.
func TestFailuresAreExplainedAndRecover(t *testing.T) {
	cp.InstallK8sClass(t)
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	token := cp.TargetToken(t, "reader")
	apiserver := strings.TrimSuffix(cp.Config.Host, "/")
	var untrusted *tlsTarget // the target of the untrusted-certificate step

	type step struct {
		name      string
		setup     func(t *testing.T, ns string) // creates connector "c" in a broken state
		condition string
		reason    string
		message   string
		fix       func(t *testing.T, ns string)
	}
	steps := []step{
		{
			name: "a missing class is ConnectorClassNotFound until the class exists",
			setup: func(t *testing.T, ns string) {
				bearerSecret(t, ns, "s", token)
				connector(t, ns, "c", "k8s-"+ns, apiserver, "s")
			},
			condition: connectorsv1alpha1.ConditionConnectorClassReady, reason: connectorsv1alpha1.ReasonConnectorClassNotFound,
			message: `ConnectorClass "k8s-`, /* …ns" not found */
			fix: func(t *testing.T, ns string) {
				var k8s connectorsv1alpha1.ConnectorClass
				if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: "k8s"}, &k8s); err != nil {
					t.Fatal(err)
				}
				clone := &connectorsv1alpha1.ConnectorClass{ObjectMeta: metav1.ObjectMeta{Name: "k8s-" + ns}, Spec: k8s.Spec}
				if err := cp.Client.Create(t.Context(), clone); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:      "a missing Secret is SecretNotFound until it is created",
			setup:     func(t *testing.T, ns string) { connector(t, ns, "c", "k8s", apiserver, "s") },
			condition: connectorsv1alpha1.ConditionSecretReady, reason: connectorsv1alpha1.ReasonSecretNotFound,
			message: "Secret s not found in namespace",
			fix:     func(t *testing.T, ns string) { bearerSecret(t, ns, "s", token) },
		},
		{
			name: "a Secret of the wrong type is SecretNotFound until it is replaced",
			setup: func(t *testing.T, ns string) {
				create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}, StringData: map[string]string{"token": token}})
				connector(t, ns, "c", "k8s", apiserver, "s")
			},
			condition: connectorsv1alpha1.ConditionSecretReady, reason: connectorsv1alpha1.ReasonSecretNotFound,
			message: "has type Opaque, authentication type bearerTokenAuth needs type connectors.cpaas.io/bearer-token",
			fix: func(t *testing.T, ns string) {
				remove(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}})
				bearerSecret(t, ns, "s", token)
			},
		},
		{
			name: "a Secret without the token key is SecretNotFound until the key is added",
			setup: func(t *testing.T, ns string) {
				create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}, Type: connectorsv1alpha1.SecretTypeBearerToken,
					StringData: map[string]string{"tokn": token}})
				connector(t, ns, "c", "k8s", apiserver, "s")
			},
			condition: connectorsv1alpha1.ConditionSecretReady, reason: connectorsv1alpha1.ReasonSecretNotFound,
			message: "lacks the key(s) token",
			fix: func(t *testing.T, ns string) {
				var s corev1.Secret
				if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "s"}, &s); err != nil {
					t.Fatal(err)
				}
				s.Data["token"] = []byte(token)
				if err := cp.Client.Update(t.Context(), &s); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "an unreachable address is ConnectionFailed until the address is fixed",
			setup: func(t *testing.T, ns string) {
				bearerSecret(t, ns, "s", token)
				connector(t, ns, "c", "k8s", "https://127.0.0.1:1", "s")
			},
			condition: connectorsv1alpha1.ConditionLivenessReady, reason: connectorsv1alpha1.ReasonConnectionFailed,
			message: "liveness probe GET https://127.0.0.1:1/livez: cannot connect",
			fix: func(t *testing.T, ns string) {
				patchConnector(t, ns, "c", func(c *connectorsv1alpha1.Connector) { c.Spec.Address = apiserver })
			},
		},
		{
			name: "an untrusted certificate is ConnectionFailed until a labelled CA Secret trusts it",
			setup: func(t *testing.T, ns string) {
				target := newTLSTarget(t, "target-token")
				bearerSecret(t, ns, "s", "target-token")
				connector(t, ns, "c", "k8s", target.URL, "s")
				untrusted = target
			},
			condition: connectorsv1alpha1.ConditionLivenessReady, reason: connectorsv1alpha1.ReasonConnectionFailed,
			message: "signed by an unknown authority",
			fix:     func(t *testing.T, _ string) { cp.CreateCASecret(t, opts.Namespace, "target-ca", untrusted.caPEM()) },
		},
		{
			name: "a token the target refuses is AuthenticationFailed until the Secret holds a good one",
			setup: func(t *testing.T, ns string) {
				bearerSecret(t, ns, "s", "not-a-valid-token")
				connector(t, ns, "c", "k8s", apiserver, "s")
			},
			condition: connectorsv1alpha1.ConditionAuthReady, reason: connectorsv1alpha1.ReasonAuthenticationFailed,
			message: "auth probe GET " + apiserver + "/api answered 401 Unauthorized",
			fix: func(t *testing.T, ns string) {
				var s corev1.Secret
				if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "s"}, &s); err != nil {
					t.Fatal(err)
				}
				s.Data["token"] = []byte(token)
				if err := cp.Client.Update(t.Context(), &s); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			ns := namespace(t, "fail")
			st.setup(t, ns)
			c := cp.WaitForConnector(t, ns, "c", st.condition+" False "+st.reason, testbed.ConditionIs(st.condition, metav1.ConditionFalse, st.reason))
			cd := connectorsv1alpha1.FindCondition(c.Status.Conditions, st.condition)
			if !strings.Contains(cd.Message, st.message) {
				t.Errorf("message %q, want it to contain %q", cd.Message, st.message)
			}
			ready := connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != st.reason {
				t.Errorf("Ready = %+v, want False with reason %s", ready, st.reason)
			}
			ev := cp.WaitForEvent(t, ns, "c", corev1.EventTypeWarning, st.reason)
			if !strings.Contains(ev.Message, st.message) {
				t.Errorf("event message %q, want it to contain %q", ev.Message, st.message)
			}
			out := cp.MustKubectl(t, "", "describe", "connector", "c", "-n", ns)
			if !strings.Contains(out, st.reason) {
				t.Errorf("kubectl describe connector does not show %s:\n%s", st.reason, out)
			}
			st.fix(t, ns)
			cp.WaitForConnector(t, ns, "c", "Ready True after the fix", testbed.ReadyTrue)
		})
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := cp.Client.Create(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, obj client.Object) {
	t.Helper()
	if err := cp.Client.Delete(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
}

func patchConnector(t *testing.T, ns, name string, mutate func(*connectorsv1alpha1.Connector)) {
	t.Helper()
	var c connectorsv1alpha1.Connector
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &c); err != nil {
		t.Fatal(err)
	}
	mutate(&c)
	if err := cp.Client.Update(t.Context(), &c); err != nil {
		t.Fatal(err)
	}
}
