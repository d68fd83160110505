package chart

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
)

//go:embed crds/*.yaml classes/*.yaml rbac/*.yaml
var files embed.FS

// CRDs returns the generated CustomResourceDefinition manifests, by file name.
func CRDs() (map[string][]byte, error) { return readDir("crds") }

// Classes returns the shipped ConnectorClass manifests, by file name.
func Classes() (map[string][]byte, error) { return readDir("classes") }

// RBAC returns the manifest of chart/rbac/<name> (for example
// "role.yaml", the generated ClusterRole of the controller and the control
// API, or "trigger-role.yaml", the ClusterRole of trigger callers).
func RBAC(name string) ([]byte, error) {
	b, err := files.ReadFile(path.Join("rbac", name))
	if err != nil {
		return nil, fmt.Errorf("no RBAC manifest %q in the chart: %w", name, err)
	}
	return b, nil
}

// Class returns the manifest of the shipped ConnectorClass name (for
// example "k8s").
func Class(name string) ([]byte, error) {
	b, err := files.ReadFile(path.Join("classes", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("no shipped ConnectorClass %q: %w", name, err)
	}
	return b, nil
}

func readDir(dir string) (map[string][]byte, error) {
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded %s: %w", dir, err)
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := files.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read embedded %s/%s: %w", dir, e.Name(), err)
		}
		out[e.Name()] = b
	}
	return out, nil
}
