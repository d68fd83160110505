//go:build integration

package reconciler_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestAConnectorOutsideItsClassContractIsToldWhyAndProbesSeeDefaults: a
// param the class does not allow makes ConnectorClassReady False
// InvalidParams; fixed, the connector becomes Ready, its liveness probe
// reading a param it omits from the class's default.
func TestAConnectorOutsideItsClassContractIsToldWhyAndProbesSeeDefaults(t *testing.T) {
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	ns := namespace(t, "contract")
	bearerSecret(t, ns, "k8s-secret", cp.TargetToken(t, "reader"))
	class := testbed.Class(t, "k8s")
	class.Name = "k8s-with-params"
	def := connectorsv1alpha1.NewStringParamValue("livez")
	class.Spec.Params = []connectorsv1alpha1.ParamSpec{
		{Name: "probePath", Default: &def},
		{Name: "tier", Default: &def, Enum: []string{"livez", "gold"}},
	}
	class.Spec.LivenessProbe.HTTP.Path = `/{{ range .Connector.Spec.Params }}{{ if eq .Name "probePath" }}{{ .Value.StringVal }}{{ end }}{{ end }}`
	if err := cp.Client.Create(t.Context(), class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), class) })

	connector(t, ns, "c", class.Name, strings.TrimSuffix(cp.Config.Host, "/"), "k8s-secret")
	patchConnector(t, ns, "c", func(c *connectorsv1alpha1.Connector) {
		c.Spec.Params = []connectorsv1alpha1.Param{{Name: "tier", Value: connectorsv1alpha1.NewStringParamValue("silver")}}
	})
	got := cp.WaitForConnector(t, ns, "c", "ConnectorClassReady InvalidParams", testbed.ConditionIs(connectorsv1alpha1.ConditionConnectorClassReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonInvalidParams))
	if msg := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionConnectorClassReady).Message; !strings.Contains(msg, `spec.params tier is "silver", want one of livez, gold`) {
		t.Errorf("message %q", msg)
	}
	patchConnector(t, ns, "c", func(c *connectorsv1alpha1.Connector) {
		c.Spec.Params = []connectorsv1alpha1.Param{{Name: "tier", Value: connectorsv1alpha1.NewStringParamValue("gold")}}
	})
	got = cp.WaitForConnector(t, ns, "c", "Ready True", testbed.ReadyTrue)
	if len(got.Spec.Params) != 1 {
		t.Errorf("spec.params %+v: the reconciler wrote the class defaults into the spec", got.Spec.Params)
	}
}
