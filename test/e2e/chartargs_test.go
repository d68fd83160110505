//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/connectors-io/connectors/internal/testbed"
)

// TestTheBinaryAcceptsTheArgumentsOfEveryChartMode: the containers of the
// project's image in every golden render of the chart (chart/testdata/
// golden, kept current by the chart's tests) run subcommands and flags the
// binary has.
func TestTheBinaryAcceptsTheArgumentsOfEveryChartMode(t *testing.T) {
	bin := binary(t)
	image, _ := chartDefaults(t)
	files, err := filepath.Glob(filepath.Join(testbed.RepoRoot(), "chart", "testdata", "golden", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden renders of the chart (%v): go test -tags integration ./chart -update writes them", err)
	}
	seen := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for {
			doc, err := r.Read()
			if err != nil {
				break
			}
			var obj struct {
				Kind     string
				Metadata struct{ Name string }
				Spec     struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Name, Image string
								Args        []string
							}
						}
					}
				}
			}
			if yaml.Unmarshal(doc, &obj) != nil {
				continue
			}
			for _, c := range obj.Spec.Template.Spec.Containers {
				if !strings.HasPrefix(c.Image, image+":") {
					continue
				}
				seen++
				args := append(append([]string{}, c.Args...), "--help")
				if out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput(); err != nil {
					t.Errorf("%s: %s %s, container %s: connectors %s: %v\n%s", filepath.Base(file), obj.Kind, obj.Metadata.Name, c.Name, strings.Join(c.Args, " "), err, out)
				}
			}
		}
	}
	if seen < 3*len(files) {
		t.Errorf("found %d containers of %s in %d renders, want the gateway, controller and csi of each", seen, image, len(files))
	}
}
