//go:build integration

package chart_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/internal/testbed"
)

// kubeVersion is the cluster version helm renders for (the chart requires
// 1.30 or later; helm template alone assumes 1.20).
const kubeVersion = "1.37.2"

// modes are the chart's shapes with golden output: --set values each.
var modes = []struct {
	name string
	set  []string
}{
	{"default", nil},
	{"external-redis", []string{"redis.url=redis://redis.example.com:6379/0"}},
	{"redis-secret", []string{"redis.existingSecret=redis-url", "gateway.hpa.enabled=true", "authorization.requireRBAC=true", "gateway.http2Relay=true"}},
	{"knative", []string{"controlPath.mode=knative", "authorization.requireRBAC=true"}},
	{"builtin-registration", []string{"csi.registration=builtin", "csi.tokenExpirationSeconds=600"}},
}

// helm runs the test bed's helm on the chart in this directory.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbed.HelmPath(t), args...)
	// A private helm home: no user repositories or plugins.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func helmTemplate(t *testing.T, set ...string) string {
	t.Helper()
	args := []string{"template", "connectors", ".", "--namespace", "connectors-system", "--kube-version", kubeVersion}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", set, err, out)
	}
	return out
}

// generated matches the values the chart generates at each render (the CA,
// the shared key, the Redis password and the config that holds it).
var generated = regexp.MustCompile(`(?m)^(  (?:tls\.crt|tls\.key|key|password|redis\.conf): ).+$`)

func TestTheChartPassesHelmLintStrict(t *testing.T) {
	for _, m := range modes {
		args := []string{"lint", "--strict", ".", "--namespace", "connectors-system", "--kube-version", kubeVersion}
		for _, s := range m.set {
			args = append(args, "--set", s)
		}
		if out, err := helm(t, args...); err != nil {
			t.Errorf("helm lint --strict (%s): %v\n%s", m.name, err, out)
		}
	}
}

func TestEachModeRendersItsGoldenManifests(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			got := generated.ReplaceAllString(helmTemplate(t, m.set...), "${1}GENERATED")
			golden := filepath.Join("testdata", "golden", m.name+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -tags integration ./chart -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("helm template differs from %s (go test -tags integration ./chart -update rewrites it; review the diff):\n%s", golden, firstDiff(got, string(want)))
			}
		})
	}
}

// firstDiff shows the first differing line and its neighbours.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "<end>"
		}
		if line(g) != line(w) {
			return "line " + strconv.Itoa(i+1) + ":\n  got:  " + line(g) + "\n  want: " + line(w)
		}
	}
	return "(same lines)"
}

func TestEveryRenderedObjectPassesTheAPIServersDryRun(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	cp.MustKubectl(t, "", "apply", "--server-side", "-f", "crds", "-f", filepath.Join("testdata", "knative-crds.yaml"))
	cp.MustKubectl(t, "", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
	cp.MustKubectl(t, "", "create", "namespace", "connectors-system")
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			out, stderr, err := cp.Kubectl(t.Context(), helmTemplate(t, m.set...), "apply", "--server-side", "--dry-run=server",
				"--field-manager=helm", "-n", "connectors-system", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry run refused the %s manifests: %v\n%s%s", m.name, err, out, stderr)
			}
		})
	}
}

func TestTheChartsCSIDriverIsTheDriversOwn(t *testing.T) {
	var found bool
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(helmTemplate(t)), 4096)
	for {
		var d storagev1.CSIDriver
		if err := dec.Decode(&d); err != nil {
			break
		}
		if d.Kind != "CSIDriver" {
			continue
		}
		found = true
		want := csi.DriverObject(csi.DriverName)
		if d.Name != want.Name || !equality.Semantic.DeepEqual(d.Spec, want.Spec) {
			t.Errorf("the chart's CSIDriver %s %+v differs from csi.DriverObject %s %+v", d.Name, d.Spec, want.Name, want.Spec)
		}
	}
	if !found {
		t.Fatal("the chart renders no CSIDriver")
	}
}

func TestValuesThatViolateTheSchemaAreRefusedWithTheirPath(t *testing.T) {
	// helm names the value by its JSON pointer: /controlPath/mode.
	for _, tc := range []struct {
		set  string
		want []string
	}{
		{"controlPath.mode=lambda", []string{"/controlPath/mode", "controller", "knative"}},
		{"csi.registration=manual", []string{"/csi/registration", "sidecar", "builtin"}},
		{"gateway.replicas=0", []string{"/gateway/replicas", "minimum"}},
		{"gateway.shutdownDelay=5 seconds", []string{"/gateway/shutdownDelay"}},
		{"gateway.replica=3", []string{"gateway", "replica"}},
		{"csi.tokenExpirationSeconds=60", []string{"/csi/tokenExpirationSeconds", "600"}},
		{"logLevel=verbose", []string{"/logLevel", "debug"}},
	} {
		t.Run(tc.set, func(t *testing.T) {
			out, err := helm(t, "template", "connectors", ".", "--kube-version", kubeVersion, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s succeeded, want a schema error", tc.set)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("helm's error does not name %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "panic") || strings.Count(strings.TrimSpace(out), "\n") > 12 {
				t.Errorf("the error is not short and readable:\n%s", out)
			}
		})
	}
}
