package v1alpha1_test

import (
	"strings"
	"testing"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

func npmLikeClass() *connectorsv1alpha1.ConnectorClass {
	str := func(s string) *connectorsv1alpha1.ParamValue {
		v := connectorsv1alpha1.NewStringParamValue(s)
		return &v
	}
	c := &connectorsv1alpha1.ConnectorClass{}
	c.Name = "npm"
	c.Spec.Params = []connectorsv1alpha1.ParamSpec{
		{Name: "registryType", Default: str("mirror"), Enum: []string{"mirror", "publish", "all"}},
		{Name: "team"},
	}
	c.Spec.AddressExtensions = []connectorsv1alpha1.ParamSpec{{Name: "api", Default: str("https://api.example.com")}, {Name: "token"}}
	return c
}

func TestConnectorsAreCheckedAgainstTheirClassesContract(t *testing.T) {
	param := func(n, v string) connectorsv1alpha1.Param {
		return connectorsv1alpha1.Param{Name: n, Value: connectorsv1alpha1.NewStringParamValue(v)}
	}
	valid := func() *connectorsv1alpha1.Connector {
		c := &connectorsv1alpha1.Connector{}
		c.Spec.Address = "https://registry.example.com"
		c.Spec.Params = []connectorsv1alpha1.Param{param("team", "web")}
		c.Spec.AddressExtensions = []connectorsv1alpha1.AddressExtension{{Name: "token", Value: "https://auth.example.com/token"}}
		return c
	}
	for _, tc := range []struct {
		name   string
		mod    func(*connectorsv1alpha1.Connector)
		reason string
		say    string
	}{
		{name: "a connector that gives what is required passes", mod: func(*connectorsv1alpha1.Connector) {}},
		{name: "an undeclared param", mod: func(c *connectorsv1alpha1.Connector) { c.Spec.Params = append(c.Spec.Params, param("registry", "x")) },
			reason: connectorsv1alpha1.ReasonInvalidParams, say: `spec.params names "registry", which ConnectorClass npm does not declare (it declares: registryType, team)`},
		{name: "a required param left out", mod: func(c *connectorsv1alpha1.Connector) { c.Spec.Params = nil },
			reason: connectorsv1alpha1.ReasonInvalidParams, say: `spec.params lacks "team", which ConnectorClass npm requires`},
		{name: "a value outside the enum", mod: func(c *connectorsv1alpha1.Connector) {
			c.Spec.Params = append(c.Spec.Params, param("registryType", "proxy"))
		},
			reason: connectorsv1alpha1.ReasonInvalidParams, say: `spec.params registryType is "proxy", want one of mirror, publish, all`},
		{name: "an undeclared address extension", mod: func(c *connectorsv1alpha1.Connector) {
			c.Spec.AddressExtensions = append(c.Spec.AddressExtensions, connectorsv1alpha1.AddressExtension{Name: "web", Value: "https://web.example.com"})
		}, reason: connectorsv1alpha1.ReasonInvalidAddressExtensions, say: `names "web"`},
		{name: "a required address extension left out", mod: func(c *connectorsv1alpha1.Connector) { c.Spec.AddressExtensions = nil },
			reason: connectorsv1alpha1.ReasonInvalidAddressExtensions, say: `lacks "token"`},
		{name: "an extension that is not a URL", mod: func(c *connectorsv1alpha1.Connector) { c.Spec.AddressExtensions[0].Value = "auth.example.com" },
			reason: connectorsv1alpha1.ReasonInvalidAddressExtensions, say: "must be an absolute http or https URL"},
		{name: "an extension equal to the address", mod: func(c *connectorsv1alpha1.Connector) {
			c.Spec.AddressExtensions[0].Value = "https://registry.example.com/"
		},
			reason: connectorsv1alpha1.ReasonInvalidAddressExtensions, say: "equals spec.address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mod(c)
			err := connectorsv1alpha1.CheckContract(c, npmLikeClass())
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tc.reason != "" && (err == nil || err.Reason != tc.reason || !strings.Contains(err.Message, tc.say)):
				t.Fatalf("err = %+v, want reason %s saying %q", err, tc.reason, tc.say)
			}
		})
	}
}

func TestClassDefaultsFillWhatAConnectorOmits(t *testing.T) {
	c := &connectorsv1alpha1.Connector{}
	c.Spec.Params = []connectorsv1alpha1.Param{{Name: "team", Value: connectorsv1alpha1.NewStringParamValue("web")}}
	got := c.WithClassDefaults(npmLikeClass())
	if len(got.Spec.Params) != 2 || got.Spec.Params[1].Name != "registryType" || got.Spec.Params[1].Value.StringVal != "mirror" {
		t.Errorf("params %+v, want team and the default registryType", got.Spec.Params)
	}
	if len(got.Spec.AddressExtensions) != 1 || got.Spec.AddressExtensions[0].Value != "https://api.example.com" {
		t.Errorf("address extensions %+v, want the default api", got.Spec.AddressExtensions)
	}
	if len(c.Spec.Params) != 1 {
		t.Error("WithClassDefaults changed the connector it was given")
	}
}
