//go:build integration

package reconciler_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestProbeTemplatesRunInTheSandbox: a probe template that reads the
// environment or runs past its time bound fails the probe with a clear
// condition message, and the controller goes on reconciling.
func TestProbeTemplatesRunInTheSandbox(t *testing.T) {
	cp.InstallK8sClass(t)
	opts := reconcilerOptions(t, recorder(t))
	opts.TemplateTimeout = 200 * time.Millisecond
	startController(t, opts)
	ns := namespace(t, "probe-templates")
	bearerSecret(t, ns, "k8s-secret", cp.TargetToken(t, "reader"))
	address := strings.TrimSuffix(cp.Config.Host, "/")

	for _, tc := range []struct {
		name, class string
		probe       func(*connectorsv1alpha1.ConnectorClass)
		condition   string
		say         string
	}{
		{
			name: "a liveness path that calls env fails LivenessReady", class: "env-probe",
			probe:     func(c *connectorsv1alpha1.ConnectorClass) { c.Spec.LivenessProbe.HTTP.Path = `{{ env "HOME" }}/livez` },
			condition: connectorsv1alpha1.ConditionLivenessReady, say: `template of path: parse: template: path:1: function "env" not defined`,
		},
		{
			name: "an auth header that runs past the time bound fails AuthReady", class: "slow-probe",
			probe: func(c *connectorsv1alpha1.ConnectorClass) {
				c.Spec.AuthProbes[0].Probe.HTTP.HTTPHeaders[0].Value = `{{ range until 2000 }}{{ range until 2000 }}{{ $x := add 1 1 }}{{ end }}{{ end }}`
			},
			condition: connectorsv1alpha1.ConditionAuthReady, say: "template of header Authorization: rendering took longer than 200ms",
		},
		{
			name: "an auth probe to another host without a scheme is not sent over plain http with its headers", class: "downgrade-probe",
			probe:     func(c *connectorsv1alpha1.ConnectorClass) { c.Spec.AuthProbes[0].Probe.HTTP.Host = "auth.example.com" },
			condition: connectorsv1alpha1.ConditionAuthReady, say: "would go over plain http with its headers; set http.scheme",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			class := testbed.Class(t, "k8s")
			class.Name = tc.class
			tc.probe(class)
			if err := cp.Client.Create(t.Context(), class); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), class) })
			connector(t, ns, tc.class, tc.class, address, "k8s-secret")
			c := cp.WaitForConnector(t, ns, tc.class, tc.condition+" False", testbed.ConditionIs(tc.condition, metav1.ConditionFalse, ""))
			if got := connectorsv1alpha1.FindCondition(c.Status.Conditions, tc.condition).Message; !strings.Contains(got, tc.say) {
				t.Errorf("%s message %q, want it to say %q", tc.condition, got, tc.say)
			}
		})
	}
	t.Run("the controller stays healthy: a sound connector still becomes Ready", func(t *testing.T) {
		connector(t, ns, "k8s-connector", "k8s", address, "k8s-secret")
		cp.WaitForConnector(t, ns, "k8s-connector", "Ready True", testbed.ReadyTrue)
	})
}
