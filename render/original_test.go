package render_test

import (
	"errors"
	"strings"
	"testing"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/render"
)

// originalStyleInput is a class written as the original's documents write
// templates, for two connectors of it.
func originalStyleInput(t *testing.T) render.Input {
	t.Helper()
	in := quickstartInput(t)
	second := connector("other", "registry", "https://registry.example.com/repository/npm")
	in.Connectors = append(in.Connectors, second)
	in.Class.Spec.Configurations = []connectorsv1alpha1.Configuration{
		{Name: "params", Data: map[string]string{
			// A range over a connector without params renders nothing; a
			// missing key prints Go's <no value>.
			"params.txt": "params:{{ range .connector.spec.params }} {{ .name }}={{ .value }}{{ end }}\nmissing: {{ .connector.spec.nope }}\n",
		}},
		{Name: "names", Data: map[string]string{
			"names.txt": "{{ range .connectors }}{{ .name }}@{{ .namespace }} {{ .metadata.name }} {{ end }}\n",
		}},
		{Name: "proxy", Data: map[string]string{
			"proxy.txt": "{{ $u := urlParse .connector.status.proxyAddress }}scheme={{ $u.scheme }} host={{ $u.host }} hostname={{ $u.hostname }} path={{ $u.path }}\n" +
				"user={{ printf \"%s/%s\" .connector.metadata.namespace .connector.metadata.name | urlquery }}\n",
		}},
		{Name: "settings", Data: map[string]string{
			"settings.xml": "<mirror>{{ .connector.spec.address }}/repository/{{ index .configurations \"mirrorRepository\" }}</mirror> strict={{ index .configurations \"strictSSL\" }}\n",
		}, Params: []connectorsv1alpha1.ParamSpec{
			{Name: "mirrorRepository"},
			{Name: "strictSSL", Default: &connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeString, StringVal: "true"}},
		}},
		{Name: "settings-override", Data: map[string]string{
			"settings.xml": "<later configuration wins/>\n",
		}},
	}
	in.ConfigParams = map[string]map[string]string{"settings": {"mirrorRepository": "maven-public"}}
	return in
}

// TestTemplatesInTheOriginalsStyleRenderTheGoldenFiles renders templates
// as the original's documents write them: a range over missing params,
// .name in .connectors, sprig's urlParse, configuration.params JSON with
// its defaults, and a later configuration's file replacing an earlier one.
func TestTemplatesInTheOriginalsStyleRenderTheGoldenFiles(t *testing.T) {
	in := originalStyleInput(t)
	in.Selection = "params,names,proxy,settings,!context.token,!http.proxy,!https.proxy,!.env"
	files, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "original-style.golden", dump(files))

	in.Selection = "settings,settings-override"
	files, err = render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(files["settings.xml"]); got != "<later configuration wins/>\n" {
		t.Errorf("settings.xml = %q, want the later configuration's", got)
	}
}

func TestConfigurationParamsAreValidatedAgainstTheirDeclarations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]map[string]string
		enum   []string
		say    string
	}{
		{name: "a required parameter without a value", params: map[string]map[string]string{"settings": {}}, say: `configuration settings needs the parameter "mirrorRepository"`},
		{name: "a parameter the configuration does not declare", params: map[string]map[string]string{"settings": {"mirrorRepository": "x", "mirorRepository": "y"}},
			say: `configuration settings declares no parameter "mirorRepository" (it declares: mirrorRepository, strictSSL)`},
		{name: "a configuration the class does not have", params: map[string]map[string]string{"setings": {"a": "b"}},
			say: `configuration.params names configuration "setings"`},
		{name: "a value outside the enum", params: map[string]map[string]string{"settings": {"mirrorRepository": "x", "strictSSL": "maybe"}}, enum: []string{"true", "false"},
			say: `parameter "strictSSL" is "maybe", want one of true, false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := originalStyleInput(t)
			in.Selection = "settings"
			in.ConfigParams = tc.params
			in.Class.Spec.Configurations[3].Params[1].Enum = tc.enum
			_, err := render.Render(in)
			if !errors.Is(err, render.ErrInvalid) || !strings.Contains(err.Error(), tc.say) {
				t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.say)
			}
		})
	}
}

// TestAClassWithoutAProxyRendersItsConstantConfigurations: without
// spec.proxy the proxy built-ins are left out, not an error.
func TestAClassWithoutAProxyRendersItsConstantConfigurations(t *testing.T) {
	in := quickstartInput(t)
	in.Class.Spec.Proxy = nil
	in.Class.Status.Proxy = nil
	in.Connectors[0].Status.Proxy = nil
	in.Class.Spec.Configurations = []connectorsv1alpha1.Configuration{{Name: "readme", Data: map[string]string{
		"README": "{{ .connector.metadata.name }} at {{ .connector.spec.address }}, proxy {{ .connector.status.proxyAddress | default \"none\" }}\n",
	}}}
	in.Selection = "readme"
	files, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "no-proxy.golden", dump(files))
	for _, f := range []string{render.FileHTTPProxy, render.FileHTTPSProxy, render.FileEnv, render.FileProxyAddress} {
		if _, ok := files[f]; ok {
			t.Errorf("%s is rendered for a class without a proxy", f)
		}
	}
}

// TestClassParamDefaultsReachTheTemplatesOfConnectorsThatOmitThem: the
// class's params defaults are in .connector.spec.params, as in the
// original.
func TestClassParamDefaultsReachTheTemplatesOfConnectorsThatOmitThem(t *testing.T) {
	in := quickstartInput(t)
	in.Class.Spec.Params = []connectorsv1alpha1.ParamSpec{{Name: "sslVerify", Default: &connectorsv1alpha1.ParamValue{Type: connectorsv1alpha1.ParamTypeString, StringVal: "true"}}}
	in.Class.Spec.Configurations = []connectorsv1alpha1.Configuration{{Name: "gitconfig", Data: map[string]string{
		".gitconfig": "{{ range .connector.spec.params }}{{ .name }}={{ .value }}{{ end }}",
	}}}
	in.Selection = "gitconfig"
	files, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(files[".gitconfig"]); got != "sslVerify=true" {
		t.Errorf(".gitconfig = %q, want the class default sslVerify=true", got)
	}
	if len(in.Connectors[0].Spec.Params) != 0 {
		t.Error("rendering wrote the default into the connector")
	}
}

// TestEachConfigurationComesFromItsOwnConnectorsClassInAMixedMount: with
// connectors of two classes, each configuration renders from the class of
// its connectors, for them; a file both write is the later class's, and the
// proxy built-ins name every connector at the last class's proxy.
func TestEachConfigurationComesFromItsOwnConnectorsClassInAMixedMount(t *testing.T) {
	in := quickstartInput(t)
	k8s := in.Class
	k8s.Spec.Configurations = append(k8s.Spec.Configurations, connectorsv1alpha1.Configuration{Name: "who", Data: map[string]string{
		"who.txt": "k8s class: {{ range .connectors }}{{ .name }} {{ end }}\n",
	}})
	registry := &connectorsv1alpha1.ConnectorClass{}
	registry.Name = "oci"
	registry.Spec.Proxy = &connectorsv1alpha1.ClassProxy{}
	registry.Spec.Configurations = []connectorsv1alpha1.Configuration{
		{Name: "registry-config", Data: map[string]string{"config.json": `{"auths":{"{{ (urlParse .connector.status.proxyAddress).host }}":{"connector":"{{ .connector.metadata.name }}","class":"{{ .connectorclass.metadata.name }}"}}}` + "\n"}},
		{Name: "who", Data: map[string]string{"who.txt": "oci class: {{ range .connectors }}{{ .name }} {{ end }}\n"}},
	}
	reg := connector("k8s-connector-demo", "harbor", "https://harbor.example.com")
	reg.Spec.ConnectorClassName = "oci"
	in.Connectors = append(in.Connectors, reg)
	in.Classes = map[string]*connectorsv1alpha1.ConnectorClass{"k8s": k8s, "oci": registry}
	in.Selection = "kubeconfig,registry-config,who,!context.token"
	files, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "mixed-classes.golden", dump(files))

	in.Selection = "helmconfig"
	if _, err := render.Render(in); !errors.Is(err, render.ErrNotFound) || !strings.Contains(err.Error(), "connector classes k8s, oci") {
		t.Errorf("err = %v, want NotFound naming both classes", err)
	}
}
