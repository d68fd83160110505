package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// KubeVersion is the version of kube-apiserver and kubectl in the test bed.
const KubeVersion = "v1.37.2"

// RepoRoot returns the root of the source tree this package was built from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FindBinDir returns the directory holding etcd, kube-apiserver, kubectl and
// helm, or an error naming the make target that builds them.
func FindBinDir() (string, error) {
	dir := os.Getenv("CONNECTORS_TEST_BINS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin", "k8s", KubeVersion)
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl", "helm"} {
		if _, err := exec.LookPath(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("testbed: %s is missing from %s: run `make test-bins` "+
				"(builds the test-bed binaries once, about 9 minutes cold)", name, dir)
		}
	}
	return dir, nil
}

// BinDir is FindBinDir that fails the test on error.
func BinDir(tb testing.TB) string {
	tb.Helper()
	dir, err := FindBinDir()
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// KubectlPath returns the test bed's kubectl.
func KubectlPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(BinDir(tb), "kubectl")
}

// HelmPath returns the test bed's helm.
func HelmPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(BinDir(tb), "helm")
}
