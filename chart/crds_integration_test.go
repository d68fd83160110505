//go:build integration

package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestCRDsOnARealAPIServer installs the generated CRDs on a real
// kube-apiserver and drives them with the real kubectl, as users will.
func TestCRDsOnARealAPIServer(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	const ns = "k8s-connector-demo"
	cp.MustKubectl(t, "", "create", "ns", ns)

	t.Run("the quick start's Secret and Connector apply unchanged", func(t *testing.T) {
		manifest, err := os.ReadFile(filepath.Join("testdata", "quickstart-step2.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		out := cp.MustKubectl(t, string(manifest), "apply", "-n", ns, "-f", "-")
		for _, want := range []string{"secret/k8s-secret created", "connector.connectors.alauda.io/k8s-connector created"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl apply printed %q, want a line %q", out, want)
			}
		}
		var got connectorsv1alpha1.Connector
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "k8s-connector"}, &got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.ConnectorClassName != "k8s" || got.Spec.Address != "https://192.168.1.100:6443" ||
			got.Spec.Auth.Name != "bearerTokenAuth" || got.Spec.Auth.SecretRef == nil || got.Spec.Auth.SecretRef.Name != "k8s-secret" {
			t.Errorf("stored spec = %+v, want the quick start's", got.Spec)
		}
	})

	t.Run("kubectl get connector prints NAME CLASS ADDRESS READY REASON AGE", func(t *testing.T) {
		out := cp.MustKubectl(t, "", "get", "connector", "k8s-connector", "-n", ns)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("kubectl get printed %q, want a header and one row", out)
		}
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME CLASS ADDRESS READY REASON AGE" {
			t.Errorf("header = %q, want NAME CLASS ADDRESS READY REASON AGE", lines[0])
		}
		row := strings.Fields(lines[1])
		if len(row) < 3 || row[0] != "k8s-connector" || row[1] != "k8s" || row[2] != "https://192.168.1.100:6443" {
			t.Errorf("row = %q, want k8s-connector k8s https://192.168.1.100:6443 …", lines[1])
		}
	})

	t.Run("the short name ctr and the category alauda find connectors", func(t *testing.T) {
		for _, resource := range []string{"ctr", "alauda"} {
			out := cp.MustKubectl(t, "", "get", resource, "-n", ns, "-o", "name")
			if !strings.Contains(out, "connector.connectors.alauda.io/k8s-connector") {
				t.Errorf("kubectl get %s printed %q, want the connector", resource, out)
			}
		}
	})

	t.Run("the READY and REASON columns show the Ready condition written through the status subresource", func(t *testing.T) {
		var c connectorsv1alpha1.Connector
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "k8s-connector"}, &c); err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		connectorsv1alpha1.SetCondition(&c.Status.Conditions, connectorsv1alpha1.Condition{
			Type: connectorsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: connectorsv1alpha1.ReasonAuthenticationFailed, Message: "the target answered 401 to GET /api",
		}, now)
		if err := cp.Client.Status().Update(t.Context(), &c); err != nil {
			t.Fatal(err)
		}
		out := cp.MustKubectl(t, "", "get", "connector", "k8s-connector", "-n", ns, "--no-headers")
		if row := strings.Fields(out); len(row) < 5 || row[3] != "False" || row[4] != connectorsv1alpha1.ReasonAuthenticationFailed {
			t.Errorf("row = %q, want READY False and REASON AuthenticationFailed", out)
		}
	})

	t.Run("the shipped k8s ConnectorClass applies", func(t *testing.T) {
		out := cp.MustKubectl(t, "", "apply", "-f", filepath.Join("classes", "k8s.yaml"))
		if !strings.Contains(out, "connectorclass.connectors.alauda.io/k8s created") {
			t.Errorf("kubectl apply printed %q", out)
		}
		var class connectorsv1alpha1.ConnectorClass
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: "k8s"}, &class); err != nil {
			t.Fatal(err)
		}
		if len(class.Spec.Configurations) != 1 || !strings.Contains(class.Spec.Configurations[0].Data["kubeconfig"], "proxy-url:") {
			t.Errorf("stored configurations = %+v, want the kubeconfig template", class.Spec.Configurations)
		}
	})

	t.Run("parameter values of any shape survive a round trip", func(t *testing.T) {
		manifest := `apiVersion: connectors.alauda.io/v1alpha1
kind: Connector
metadata:
  name: git-github
spec:
  connectorClassName: git
  address: "https://github.com"
  auth:
    name: basicAuth
    params:
    - name: repository
      value: "org/repo.git"
  params:
  - name: sslVerify
    value: "false"
  - name: mirrors
    value: ["a", "b"]
`
		cp.MustKubectl(t, manifest, "apply", "-n", ns, "-f", "-")
		var c connectorsv1alpha1.Connector
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "git-github"}, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.Spec.Auth.Params) != 1 || c.Spec.Auth.Params[0].Value.StringVal != "org/repo.git" {
			t.Errorf("auth params = %+v", c.Spec.Auth.Params)
		}
		if len(c.Spec.Params) != 2 || c.Spec.Params[0].Value.StringVal != "false" ||
			strings.Join(c.Spec.Params[1].Value.ArrayVal, ",") != "a,b" {
			t.Errorf("params = %+v", c.Spec.Params)
		}
	})

	invalid := []struct {
		name     string
		manifest string
		want     []string
	}{
		{
			name: "a connector without a class and with an address that is not a URL is rejected with both reasons",
			manifest: `apiVersion: connectors.alauda.io/v1alpha1
kind: Connector
metadata:
  name: broken
spec:
  address: not a url
`,
			want: []string{"spec.connectorClassName: Required value: connectorClassName is required", "address must be an absolute http or https URL"},
		},
		{
			name:     "an ftp address is rejected",
			manifest: connectorWithAddress("ftp-target", "ftp://files.example.com"),
			want:     []string{"address must be an absolute http or https URL"},
		},
		{
			name:     "an address without a host is rejected",
			manifest: connectorWithAddress("no-host", "https://"),
			want:     []string{"address must be an absolute http or https URL"},
		},
		{
			name:     "a relative address is rejected",
			manifest: connectorWithAddress("relative", "/api/v1"),
			want:     []string{"address must be an absolute http or https URL"},
		},
		{
			name: "an unknown field is rejected by kubectl's strict validation",
			manifest: `apiVersion: connectors.alauda.io/v1alpha1
kind: Connector
metadata:
  name: typo
spec:
  connectorClassName: k8s
  address: https://example.com
  targetAddress: https://example.com
`,
			want: []string{`unknown field "spec.targetAddress"`},
		},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := cp.Kubectl(t.Context(), tt.manifest, "apply", "-n", ns, "-f", "-")
			if err == nil {
				t.Fatal("kubectl apply succeeded, want a rejection")
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("kubectl said %q, want it to contain %q", stderr, want)
				}
			}
		})
	}

	t.Run("an address with a port and a path prefix is accepted", func(t *testing.T) {
		cp.MustKubectl(t, connectorWithAddress("prefixed", "https://platform.example.com:8443/kubernetes/global"), "apply", "-n", ns, "-f", "-")
	})
}

func connectorWithAddress(name, address string) string {
	return `apiVersion: connectors.alauda.io/v1alpha1
kind: Connector
metadata:
  name: ` + name + `
spec:
  connectorClassName: k8s
  address: "` + address + `"
`
}
