//go:build integration

package reconciler_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestCACertReadyTellsEachReasonWithoutChangingReady: CACertReady (severity
// Info) is Valid, NoCACert, SecretNotFound or InvalidPEM with the
// original's Warning events, and Ready follows the probes only.
func TestCACertReadyTellsEachReasonWithoutChangingReady(t *testing.T) {
	cp.InstallK8sClass(t)
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	ns := namespace(t, "ca-cert")
	bearerSecret(t, ns, "k8s-secret", cp.TargetToken(t, "reader"))
	apiserver := strings.TrimSuffix(cp.Config.Host, "/")
	secret := func(name string, data map[string][]byte) {
		t.Helper()
		if err := cp.Client.Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	secret("corp-ca", map[string][]byte{"corp-root.pem": cp.Config.CAData})
	secret("not-pem", map[string][]byte{"ca.crt": []byte("this is not a certificate")})

	for _, tc := range []struct {
		name, connector, caSecret string
		status                    metav1.ConditionStatus
		reason, event             string
	}{
		{name: "no caCertSecretRef is True NoCACert", connector: "no-ca", status: metav1.ConditionTrue, reason: connectorsv1alpha1.ReasonNoCACert},
		{name: "a Secret with a .pem key is True Valid", connector: "valid-ca", caSecret: "corp-ca", status: metav1.ConditionTrue, reason: connectorsv1alpha1.ReasonValid},
		{name: "a missing Secret is False SecretNotFound", connector: "missing-ca", caSecret: "nowhere", status: metav1.ConditionFalse,
			reason: connectorsv1alpha1.ReasonSecretNotFound, event: "CACertSecretNotFound"},
		{name: "a Secret without PEM is False InvalidPEM", connector: "bad-ca", caSecret: "not-pem", status: metav1.ConditionFalse,
			reason: connectorsv1alpha1.ReasonInvalidPEM, event: "InvalidCACert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connector(t, ns, tc.connector, "k8s", apiserver, "k8s-secret")
			if tc.caSecret != "" {
				patchConnector(t, ns, tc.connector, func(c *connectorsv1alpha1.Connector) {
					c.Spec.CACertSecretRef = &connectorsv1alpha1.LocalSecretReference{Name: tc.caSecret}
				})
			}
			got := cp.WaitForConnector(t, ns, tc.connector, "CACertReady "+tc.reason+" and Ready True", func(c *connectorsv1alpha1.Connector) bool {
				cd := connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionCACertReady)
				return cd != nil && cd.Reason == tc.reason && testbed.ReadyTrue(c)
			})
			cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionCACertReady)
			if cd.Status != tc.status || cd.Severity != connectorsv1alpha1.SeverityInfo || cd.Message == "" {
				t.Errorf("CACertReady %+v, want status %s, severity Info and a message", cd, tc.status)
			}
			if tc.event != "" {
				ev := cp.WaitForEvent(t, ns, tc.connector, corev1.EventTypeWarning, tc.event)
				if !strings.Contains(ev.Message, tc.caSecret) {
					t.Errorf("event %s says %q, want the Secret named", tc.event, ev.Message)
				}
			}
		})
	}
}

// TestATargetWithAnUnknownCAIsToldTheCommandThatTrustsIt: LivenessReady
// names the Secret to create and the patch that references it; running
// them, as written, makes the connector Ready. Verification is never
// skipped.
func TestATargetWithAnUnknownCAIsToldTheCommandThatTrustsIt(t *testing.T) {
	cp.InstallK8sClass(t)
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	ns := namespace(t, "unknown-ca")
	target := newTLSTarget(t, "target-token")
	bearerSecret(t, ns, "s", "target-token")
	connector(t, ns, "private", "k8s", target.URL, "s")
	c := cp.WaitForConnector(t, ns, "private", "LivenessReady False", testbed.ConditionIs(connectorsv1alpha1.ConditionLivenessReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed))
	msg := connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionLivenessReady).Message
	create := "kubectl create secret generic private-ca -n " + ns + " --from-file=ca.crt=<the target's CA certificate>"
	patch := "kubectl patch connector private -n " + ns + ` --type=merge -p '{"spec":{"caCertSecretRef":{"name":"private-ca"}}}'`
	for _, want := range []string{"signed by an unknown authority", create, patch, "TLS verification is never skipped"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("LivenessReady message %q, want it to say %q", msg, want)
		}
	}

	// Run the two commands as the message writes them.
	caFile := t.TempDir() + "/target-ca.crt"
	if err := os.WriteFile(caFile, target.caPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, command := range []string{strings.Replace(create, "<the target's CA certificate>", caFile, 1), patch} {
		cmd := exec.CommandContext(t.Context(), "sh", "-c", command+" --kubeconfig "+cp.KubeconfigPath)
		cmd.Env = append(cmd.Environ(), "PATH="+cp.BinDir+":/usr/bin:/bin")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
	}
	c = cp.WaitForConnector(t, ns, "private", "Ready True", testbed.ReadyTrue)
	if cd := connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionCACertReady); cd == nil || cd.Reason != connectorsv1alpha1.ReasonValid {
		t.Errorf("CACertReady %+v, want Valid", cd)
	}
	var s corev1.Secret
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "private-ca"}, &s); err != nil {
		t.Fatal(err)
	}
}
