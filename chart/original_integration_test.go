//go:build integration

package chart_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// originalDocs splits a testdata/original file into its documents.
func originalDocs(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "original", name))
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
	return docs
}

// TestManifestsOfTheOriginalsClassShapesApplyStrictlyAndDecodeInGo applies
// one manifest per class shape of the original (written from its reference:
// nexus with an OpenAPI api and configuration params, sonarqube with CEL
// probes, github with address extensions, gitlab with a Rego generator and
// auth extractor, npm with enum params, a git class with v0.16.1 struct
// defaults) with kubectl --validate=strict to a real API server, decodes
// every document strictly into the Go types, and reads each object back
// unchanged.
func TestManifestsOfTheOriginalsClassShapesApplyStrictlyAndDecodeInGo(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	const ns = "original-shapes"
	cp.MustKubectl(t, "", "create", "ns", ns)
	files, err := filepath.Glob(filepath.Join("testdata", "original", "*.yaml"))
	if err != nil || len(files) < 6 {
		t.Fatalf("testdata/original holds %d files (%v), want the six shapes", len(files), err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			manifest, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, err := cp.Kubectl(t.Context(), string(manifest), "apply", "--validate=strict", "-n", ns, "-f", "-")
			if err != nil || strings.Contains(stderr, "Warning") {
				t.Fatalf("kubectl apply --validate=strict: %v\n%s\n%s", err, stdout, stderr)
			}
			for _, doc := range originalDocs(t, name) {
				var meta struct{ Kind string }
				if err := yaml.Unmarshal(doc, &meta); err != nil {
					t.Fatal(err)
				}
				switch meta.Kind {
				case "ConnectorClass":
					var want, got connectorsv1alpha1.ConnectorClass
					if err := yaml.UnmarshalStrict(doc, &want); err != nil {
						t.Fatalf("the Go types do not know a field of ConnectorClass %s: %v", want.Name, err)
					}
					if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: want.Name}, &got); err != nil {
						t.Fatal(err)
					}
					if !apiequality.Semantic.DeepEqual(got.Spec, want.Spec) {
						t.Errorf("ConnectorClass %s reads back as\n%+v\nwant\n%+v", want.Name, got.Spec, want.Spec)
					}
				case "Connector":
					var want, got connectorsv1alpha1.Connector
					if err := yaml.UnmarshalStrict(doc, &want); err != nil {
						t.Fatalf("the Go types do not know a field of Connector %s: %v", want.Name, err)
					}
					if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: want.Name}, &got); err != nil {
						t.Fatal(err)
					}
					if !apiequality.Semantic.DeepEqual(got.Spec, want.Spec) {
						t.Errorf("Connector %s reads back as\n%+v\nwant\n%+v", want.Name, got.Spec, want.Spec)
					}
				case "Secret":
					var s corev1.Secret
					if err := yaml.UnmarshalStrict(doc, &s); err != nil {
						t.Fatal(err)
					}
				default:
					t.Fatalf("unexpected kind %q", meta.Kind)
				}
			}
		})
	}

	class := func(name string) *connectorsv1alpha1.ConnectorClass {
		t.Helper()
		var c connectorsv1alpha1.ConnectorClass
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: name}, &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	t.Run("the v0.16.1 struct defaults decode as their values", func(t *testing.T) {
		c := class("git-legacy")
		if d := c.Spec.Params[0].Default; d == nil || d.Type != connectorsv1alpha1.ParamTypeString || d.StringVal != "true" {
			t.Errorf("sslVerify default %+v, want the string true", d)
		}
		if d := c.Spec.Params[1].Default; d == nil || d.Type != connectorsv1alpha1.ParamTypeArray || len(d.ArrayVal) != 2 {
			t.Errorf("mirrors default %+v, want a list of two", d)
		}
	})
	t.Run("the fields the original's classes use are kept", func(t *testing.T) {
		if cel := class("sonarqube").Spec.AuthProbes[0].Probe.HTTP.Response; cel == nil || cel.CEL != "response.body.valid == true" {
			t.Errorf("sonarqube auth probe response %+v", cel)
		}
		if ext := class("github").Spec.AddressExtensions; len(ext) != 1 || ext[0].Name != "api" || ext[0].Default.StringVal != "https://api.github.com" {
			t.Errorf("github address extensions %+v", ext)
		}
		nexus := class("nexus")
		if nexus.Spec.API == nil || nexus.Spec.API.OpenAPI == nil || !bytes.Contains(nexus.Spec.API.OpenAPI.Raw, []byte("listNexusRepositories")) ||
			nexus.Spec.API.Permissions == nil || nexus.Spec.Configurations[0].Params[0].Default.StringVal != "maven-public" {
			t.Errorf("nexus api %+v, configurations %+v", nexus.Spec.API, nexus.Spec.Configurations)
		}
		if gl := class("gitlab").Spec; gl.Proxy == nil || gl.Proxy.AuthExtractor == nil || gl.Auth.Types[0].Generator == nil {
			t.Errorf("gitlab proxy %+v, auth %+v", gl.Proxy, gl.Auth)
		}
		if p := class("npm").Spec.Params[0]; len(p.Enum) != 3 || p.Annotations["ui.cpaas.io/widget"] != "select" {
			t.Errorf("npm param %+v", p)
		}
	})

	t.Run("a field the original does not have either is refused by name", func(t *testing.T) {
		_, stderr, err := cp.Kubectl(t.Context(), `apiVersion: connectors.alauda.io/v1alpha1
kind: Connector
metadata:
  name: typo
spec:
  connectorClassName: k8s
  address: https://192.168.1.100:6443
  authRef:
    name: k8s-secret
`, "apply", "--validate=strict", "-n", ns, "-f", "-")
		if err == nil || !strings.Contains(stderr, `unknown field "spec.authRef"`) {
			t.Errorf("kubectl apply: %v\n%s; want a refusal naming spec.authRef", err, stderr)
		}
	})
}
