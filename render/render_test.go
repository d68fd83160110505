package render_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	sampleCA    = "-----BEGIN CERTIFICATE-----\nMIIBsample\n-----END CERTIFICATE-----\n"
	sampleToken = tokens.Token("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzYW1wbGUifQ.c2lnbmF0dXJl")
)

func k8sClass(t *testing.T) *connectorsv1alpha1.ConnectorClass {
	t.Helper()
	raw, err := chart.Class("k8s")
	if err != nil {
		t.Fatal(err)
	}
	var class connectorsv1alpha1.ConnectorClass
	if err := yaml.UnmarshalStrict(raw, &class); err != nil {
		t.Fatal(err)
	}
	class.Status.Proxy = &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{URL: "http://connectors-gateway.connectors-system.svc.cluster.local"}}
	return &class
}

func connector(ns, name, address string) *connectorsv1alpha1.Connector {
	return &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: connectorsv1alpha1.ConnectorSpec{
			ConnectorClassName: "k8s", Address: address,
			Auth: connectorsv1alpha1.ConnectorAuth{Name: "bearerTokenAuth", SecretRef: &connectorsv1alpha1.SecretReference{Name: "k8s-secret"}},
		},
		Status: connectorsv1alpha1.ConnectorStatus{Proxy: &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{
			URL: fmt.Sprintf("http://c-%s.%s.svc.cluster.local", name, ns),
		}}},
	}
}

func quickstartInput(t *testing.T) render.Input {
	t.Helper()
	return render.Input{
		Class:       k8sClass(t),
		Connectors:  []*connectorsv1alpha1.Connector{connector("k8s-connector-demo", "k8s-connector", "https://192.168.1.100:6443")},
		Token:       sampleToken,
		ProxyCACert: []byte(sampleCA),
		Selection:   "kubeconfig",
	}
}

// dump lays the files out as one text for a golden file.
func dump(files render.Files) []byte {
	var b bytes.Buffer
	for _, n := range files.Names() {
		fmt.Fprintf(&b, "==> %s <==\n%s", n, files[n])
		if !bytes.HasSuffix(files[n], []byte("\n")) {
			b.WriteString("\n[no newline at end of file]\n")
		}
	}
	return b.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./render -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./render -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestTheQuickStartKubeconfigAndBuiltinsMatchTheGoldenFile(t *testing.T) {
	files, err := render.Render(quickstartInput(t))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "k8s-quickstart.golden", dump(files))

	cfg, err := clientcmd.Load(files["kubeconfig"])
	if err != nil {
		t.Fatalf("client-go cannot load the kubeconfig: %v", err)
	}
	c := cfg.Clusters["k8s"]
	if c == nil || c.Server != "https://192.168.1.100:6443" ||
		c.ProxyURL != "http://k8s-connector-demo%2Fk8s-connector:"+string(sampleToken)+"@c-k8s-connector.k8s-connector-demo.svc.cluster.local" ||
		string(c.CertificateAuthorityData) != sampleCA {
		t.Errorf("cluster k8s = %+v, not the documented shape", c)
	}
	if got := string(files[render.FileHTTPProxy]); got != c.ProxyURL {
		t.Errorf("http.proxy = %q, want the kubeconfig's proxy-url", got)
	}
}

func TestSeveralConnectorsShareOneProxyUser(t *testing.T) {
	in := quickstartInput(t)
	in.Connectors = append(in.Connectors, connector("other", "registry", "https://registry.example.com"))
	in.Class.Spec.Configurations = append(in.Class.Spec.Configurations, connectorsv1alpha1.Configuration{
		Name: "list",
		Data: map[string]string{"targets": `{{ range .connectors }}{{ .metadata.namespace }}/{{ .metadata.name }} {{ .spec.address }} {{ .status.proxyAddress }}
{{ end }}class proxy {{ .connectorclass.proxyAddress }}
region {{ .configurations.region }}
`},
		Params: []connectorsv1alpha1.ParamSpec{{Name: "region", Default: ptr(connectorsv1alpha1.NewStringParamValue("eu"))}},
	})
	in.Selection = "list, !context.token"
	files, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "two-connectors.golden", dump(files))
}

func ptr[T any](v T) *T { return &v }

func TestSelectionsAndTheirErrors(t *testing.T) {
	big := func(in *render.Input) {
		in.Class.Spec.Configurations[0].Data["kubeconfig"] = `{{ range until 5000 }}0123456789{{ end }}`
		in.Limits.MaxFileBytes = 1000
	}
	slow := func(in *render.Input) {
		in.Class.Spec.Configurations[0].Data["kubeconfig"] = `{{ range until 3000 }}{{ range until 3000 }}{{ end }}{{ end }}`
		in.Limits.Timeout = 20 * time.Millisecond
	}
	for _, tc := range []struct {
		name      string
		selection string
		mod       func(*render.Input)
		wantFiles []string
		wantExtra string // a file besides wantFiles
		wantErr   error
		wantText  []string
	}{
		{name: "an empty selection yields the built-in files only", selection: "",
			wantFiles: render.BuiltinFiles()},
		{name: "the kubeconfig without the token file leaves out context.token", selection: "kubeconfig,!context.token",
			wantFiles: []string{".env", "ca.cert", "ca.crt", "connector.status.proxyAddress", "context.proxy.caCert", "http.proxy", "https.proxy", "kubeconfig"}},
		{name: "excluding every file is refused", selection: "kubeconfig,!kubeconfig,!context.token,!context.proxy.caCert,!ca.crt,!ca.cert,!http.proxy,!https.proxy,!.env,!connector.status.proxyAddress",
			wantErr: render.ErrInvalid, wantText: []string{"excludes every file"}},
		{name: "an unknown configuration is not found and the known ones are listed", selection: "helmconfig",
			wantErr: render.ErrNotFound, wantText: []string{"connector class k8s", `"helmconfig"`, "kubeconfig"}},
		{name: "excluding a file that is not there is refused", selection: "kubeconfig,!kubecfg",
			wantErr: render.ErrInvalid, wantText: []string{`"kubecfg"`}},
		{name: "an exclusion with a slash is refused", selection: "!../etc",
			wantErr: render.ErrInvalid, wantText: []string{"must not contain /"}},
		{name: "a template file name with a slash names class, configuration and file", selection: "kubeconfig",
			mod:     func(in *render.Input) { in.Class.Spec.Configurations[0].Data["../evil"] = "x" },
			wantErr: render.ErrInvalid, wantText: []string{"connector class k8s, configuration kubeconfig, file ../evil"}},
		{name: "a template file name starting with two dots is refused", selection: "kubeconfig",
			mod:     func(in *render.Input) { in.Class.Spec.Configurations[0].Data["..data"] = "x" },
			wantErr: render.ErrInvalid, wantText: []string{"must not start with two dots"}},
		{name: "a too long file name is refused", selection: "kubeconfig",
			mod:     func(in *render.Input) { in.Class.Spec.Configurations[0].Data[strings.Repeat("a", 256)] = "x" },
			wantErr: render.ErrInvalid, wantText: []string{"longer than 255"}},
		{name: "a template file may replace a built-in file, as in the original", selection: "kubeconfig",
			mod:       func(in *render.Input) { in.Class.Spec.Configurations[0].Data["ca.crt"] = "x" },
			wantFiles: []string{".env", "ca.cert", "ca.crt", "connector.status.proxyAddress", "context.proxy.caCert", "context.token", "http.proxy", "https.proxy", "kubeconfig"}},
		{name: "an oversized output is a template error naming the file", selection: "kubeconfig", mod: big,
			wantErr: render.ErrTemplate, wantText: []string{"configuration kubeconfig, file kubeconfig", "exceeds the limit of 1000 bytes"}},
		{name: "a slow template is stopped at the time limit", selection: "kubeconfig", mod: slow,
			wantErr: render.ErrTemplate, wantText: []string{"file kubeconfig", "longer than"}},
		{name: "a broken template is a template error", selection: "kubeconfig",
			mod:     func(in *render.Input) { in.Class.Spec.Configurations[0].Data["kubeconfig"] = "{{ .connector.nope.x }" },
			wantErr: render.ErrTemplate, wantText: []string{"file kubeconfig", "parse"}},
		{name: "a missing key renders as Go's default rather than failing the mount", selection: "kubeconfig",
			mod: func(in *render.Input) {
				in.Class.Spec.Configurations[0].Data["kubeconfig"] = "{{ .connector.spec.nope }}"
			},
			wantFiles: render.BuiltinFiles(), wantExtra: "kubeconfig"},
		{name: "a template that fails with the token never puts the token into the error", selection: "kubeconfig",
			mod: func(in *render.Input) {
				in.Class.Spec.Configurations[0].Data["kubeconfig"] = "{{ fail .context.token }}"
			},
			wantErr: render.ErrTemplate, wantText: []string{"at kubeconfig:1:3", "withheld"}},
		{name: "a template that fails with the base64-encoded token keeps it out of the error", selection: "kubeconfig",
			mod: func(in *render.Input) {
				in.Class.Spec.Configurations[0].Data["kubeconfig"] = "line one\n  {{ fail (b64enc .context.token) }}"
			},
			wantErr: render.ErrTemplate, wantText: []string{"configuration kubeconfig, file kubeconfig", "at kubeconfig:2:5"}},
		{name: "a template that fails with a prefix of the token keeps it out of the error", selection: "kubeconfig",
			mod: func(in *render.Input) {
				in.Class.Spec.Configurations[0].Data["kubeconfig"] = "{{ fail (trunc 30 .context.token) }}"
			},
			wantErr: render.ErrTemplate, wantText: []string{"at kubeconfig:1:3"}},
		{name: "a failed urlParse of the proxy URL keeps the token out of the error", selection: "kubeconfig",
			mod: func(in *render.Input) {
				in.Class.Spec.Configurations[0].Data["kubeconfig"] = "{{ urlParse (printf \"%s\\x7f\" (urlquery .context.token)) }}"
			},
			wantErr: render.ErrTemplate, wantText: []string{"at kubeconfig:1:3"}},
		{name: "the environment of the driver is out of reach", selection: "kubeconfig",
			mod:     func(in *render.Input) { in.Class.Spec.Configurations[0].Data["kubeconfig"] = `{{ env "HOME" }}` },
			wantErr: render.ErrTemplate, wantText: []string{`function "env" not defined`}},
		{name: "a required parameter without value is refused", selection: "kubeconfig",
			mod: func(in *render.Input) {
				in.Class.Spec.Configurations[0].Params = []connectorsv1alpha1.ParamSpec{{Name: "cluster"}}
			},
			wantErr: render.ErrInvalid, wantText: []string{`needs the parameter "cluster"`}},
		{name: "a given parameter reaches the template", selection: "kubeconfig,!kubeconfig,!context.token,!context.proxy.caCert,!ca.crt,!ca.cert,!http.proxy,!https.proxy,!.env,!connector.status.proxyAddress,p",
			mod: func(in *render.Input) {
				in.Class.Spec.Configurations = append(in.Class.Spec.Configurations, connectorsv1alpha1.Configuration{
					Name: "p", Data: map[string]string{"cluster": "{{ .configurations.cluster }}"}, Params: []connectorsv1alpha1.ParamSpec{{Name: "cluster"}},
				})
				in.Params = map[string]string{"cluster": "prod"}
			},
			wantFiles: []string{"cluster"}},
		{name: "a connector without proxy address cannot be rendered", selection: "kubeconfig",
			mod:     func(in *render.Input) { in.Connectors[0].Status.Proxy = nil },
			wantErr: render.ErrInvalid, wantText: []string{"has no proxy address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := quickstartInput(t)
			in.Selection = tc.selection
			if tc.mod != nil {
				tc.mod(&in)
			}
			files, err := render.Render(in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				for _, s := range tc.wantText {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				for _, form := range []string{string(sampleToken), string(sampleToken)[:20], base64.StdEncoding.EncodeToString([]byte(sampleToken))[:20], string(sampleToken)[len(sampleToken)-20:]} {
					if strings.Contains(err.Error(), form) {
						t.Error("the error contains the token or a part or an encoding of it")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.wantFiles
			if tc.wantExtra != "" {
				want = append(slices.Clone(want), tc.wantExtra)
				slices.Sort(want)
			}
			if got := strings.Join(files.Names(), ","); got != strings.Join(want, ",") {
				t.Errorf("files = %s, want %s", got, strings.Join(want, ","))
			}
		})
	}
}

func TestAGivenParameterIsRendered(t *testing.T) {
	in := quickstartInput(t)
	in.Class.Spec.Configurations = append(in.Class.Spec.Configurations, connectorsv1alpha1.Configuration{
		Name: "p", Data: map[string]string{"cluster": "{{ .configurations.cluster }}"}, Params: []connectorsv1alpha1.ParamSpec{{Name: "cluster"}},
	})
	in.Params = map[string]string{"cluster": "prod"}
	in.Selection = "p"
	files, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(files["cluster"]) != "prod" {
		t.Errorf("cluster = %q, want prod", files["cluster"])
	}
}

func TestTemplatesThatWouldAllocateByANumberFailFast(t *testing.T) {
	for _, tc := range []struct {
		name     string
		template string
		wantText string
	}{
		{name: "a huge repeat fails before it allocates", template: `{{ repeat 300000000 "x" | len }}`, wantText: "repeat would produce 300000000"},
		{name: "a huge until fails before it allocates", template: `{{ until 100000000 | len }}`, wantText: "until would produce"},
		{name: "a huge untilStep fails before it allocates", template: `{{ untilStep 0 100000000 1 | len }}`, wantText: "untilStep would produce"},
		{name: "a huge seq fails before it allocates", template: `{{ seq 100000000 | len }}`, wantText: "seq would produce"},
		{name: "a huge randAlpha fails before it allocates", template: `{{ randAlpha 300000000 | len }}`, wantText: "randAlpha would produce"},
		{name: "a huge indent fails before it allocates", template: `{{ indent 300000000 "x" | len }}`, wantText: "indent would produce"},
		{name: "doubling a string in a loop stops at the bound", template: `{{ $s := "xxxxxxxx" }}{{ range until 60 }}{{ $s = cat $s $s }}{{ end }}{{ len $s }}`, wantText: "cat would produce"},
		{name: "doubling with printf stops at the bound", template: `{{ $s := "xxxxxxxx" }}{{ range until 60 }}{{ $s = printf "%s%s" $s $s }}{{ end }}{{ len $s }}`, wantText: "printf would produce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := quickstartInput(t)
			in.Class.Spec.Configurations[0].Data["kubeconfig"] = tc.template
			in.Limits.Timeout = 10 * time.Second
			start := time.Now()
			_, err := render.Render(in)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the rendering took %s, want it to fail fast", took)
			}
			if !errors.Is(err, render.ErrTemplate) || !strings.Contains(err.Error(), tc.wantText) || !strings.Contains(err.Error(), "file kubeconfig") {
				t.Fatalf("err = %v, want a template error naming the file and saying %q", err, tc.wantText)
			}
		})
	}
}
