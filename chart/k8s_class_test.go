package chart_test

import (
	"bytes"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const sampleCA = "-----BEGIN CERTIFICATE-----\nMIIBsample\n-----END CERTIFICATE-----\n"

const sampleToken = tokens.Token("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzYW1wbGUifQ.c2lnbmF0dXJl")

// sampleConnector is the quick start's connector as the reconciler
// publishes it.
func sampleConnector() *connectorsv1alpha1.Connector {
	return &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: "k8s-connector-demo", Name: "k8s-connector"},
		Spec:       connectorsv1alpha1.ConnectorSpec{ConnectorClassName: "k8s", Address: "https://192.168.1.100:6443"},
		Status: connectorsv1alpha1.ConnectorStatus{Proxy: &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{
			URL: "http://c-k8s-connector.k8s-connector-demo.svc.cluster.local",
		}}},
	}
}

func loadK8sClass(t *testing.T) *connectorsv1alpha1.ConnectorClass {
	t.Helper()
	raw, err := chart.Class("k8s")
	if err != nil {
		t.Fatal(err)
	}
	var class connectorsv1alpha1.ConnectorClass
	if err := yaml.UnmarshalStrict(raw, &class); err != nil {
		t.Fatalf("the k8s class does not decode strictly into the API types: %v", err)
	}
	return &class
}

// renderKubeconfig renders the class's kubeconfig through package render,
// as the CSI driver does, for the quick start's connector and a made-up
// pod token.
func renderKubeconfig(t *testing.T, class *connectorsv1alpha1.ConnectorClass) []byte {
	t.Helper()
	files, err := render.Render(render.Input{
		Class: class, Connectors: []*connectorsv1alpha1.Connector{sampleConnector()}, Token: sampleToken,
		ProxyCACert: []byte(sampleCA), Selection: "kubeconfig",
	})
	if err != nil {
		t.Fatalf("render the kubeconfig configuration: %v", err)
	}
	// Rendering prints <no value> for a missing key (as the original does);
	// the shipped class must not rely on one.
	if bytes.Contains(files["kubeconfig"], []byte("<no value>")) {
		t.Fatalf("the kubeconfig reads a key its data lacks:\n%s", files["kubeconfig"])
	}
	return files["kubeconfig"]
}

func TestK8sClassDeclaresWhatDesignSection3Says(t *testing.T) {
	class := loadK8sClass(t)
	if class.Name != "k8s" {
		t.Errorf("name = %q, want k8s", class.Name)
	}
	if len(class.Spec.Auth.Types) != 1 || class.Spec.Auth.Types[0].Name != "bearerTokenAuth" ||
		class.Spec.Auth.Types[0].SecretType != connectorsv1alpha1.SecretTypeBearerToken {
		t.Errorf("auth types = %+v, want one bearerTokenAuth of type %s", class.Spec.Auth.Types, connectorsv1alpha1.SecretTypeBearerToken)
	}
	if p := class.Spec.LivenessProbe; p == nil || p.HTTP == nil || p.HTTP.Path != "/livez" {
		t.Errorf("liveness probe = %+v, want GET /livez", p)
	}
	if len(class.Spec.AuthProbes) != 1 || class.Spec.AuthProbes[0].Probe.HTTP == nil ||
		class.Spec.AuthProbes[0].Probe.HTTP.Path != "/api" {
		t.Fatalf("auth probes = %+v, want one GET /api", class.Spec.AuthProbes)
	}
	h := class.Spec.AuthProbes[0].Probe.HTTP.HTTPHeaders
	if len(h) != 1 || h[0].Name != "Authorization" || h[0].Value != "Bearer {{ .Secret.StringData.token }}" {
		t.Errorf("auth probe headers = %+v, want the Secret's token as a bearer token", h)
	}
	if class.Spec.Proxy == nil || class.Spec.Proxy.Ref == nil || class.Spec.Proxy.Ref.Kind != "Service" {
		t.Errorf("proxy = %+v, want a Service reference to the gateway", class.Spec.Proxy)
	}
}

func TestK8sKubeconfigTemplateRendersTheGoldenFile(t *testing.T) {
	got := renderKubeconfig(t, loadK8sClass(t))
	golden := filepath.Join("testdata", "k8s-kubeconfig.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./chart -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered kubeconfig differs from %s (go test ./chart -update rewrites it):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

func TestK8sKubeconfigIsAValidKubeconfigThroughTheGateway(t *testing.T) {
	cfg, err := clientcmd.Load(renderKubeconfig(t, loadK8sClass(t)))
	if err != nil {
		t.Fatalf("client-go cannot load the rendered kubeconfig: %v", err)
	}
	if cfg.CurrentContext != "k8s" {
		t.Errorf("current-context = %q, want k8s", cfg.CurrentContext)
	}
	cluster := cfg.Clusters["k8s"]
	if cluster == nil {
		t.Fatal("no cluster k8s")
	}
	if cluster.Server != "https://192.168.1.100:6443" {
		t.Errorf("server = %q, want the connector's address", cluster.Server)
	}
	wantProxy := "http://k8s-connector-demo%2Fk8s-connector:eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzYW1wbGUifQ.c2lnbmF0dXJl@c-k8s-connector.k8s-connector-demo.svc.cluster.local"
	if cluster.ProxyURL != wantProxy {
		t.Errorf("proxy-url = %q, want %q", cluster.ProxyURL, wantProxy)
	}
	if string(cluster.CertificateAuthorityData) != sampleCA {
		t.Errorf("certificate-authority-data = %q, want the gateway CA %q", cluster.CertificateAuthorityData, base64.StdEncoding.EncodeToString([]byte(sampleCA)))
	}
	if u := cfg.AuthInfos["k8s"]; u == nil || u.Token != "fake-token" {
		t.Errorf("user k8s = %+v, want token fake-token", u)
	}
	if ctx := cfg.Contexts["k8s"]; ctx == nil || ctx.Cluster != "k8s" || ctx.AuthInfo != "k8s" {
		t.Errorf("context k8s = %+v, want cluster k8s and user k8s", ctx)
	}
	if strings.Contains(string(renderKubeconfig(t, loadK8sClass(t))), "Secret") {
		t.Error("the kubeconfig must not reference the Secret")
	}
}
