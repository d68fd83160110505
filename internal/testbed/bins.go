package testbed

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/connectors-io/connectors/internal/localcluster"
)

// KubeVersion is the version of kube-apiserver and kubectl in the test bed.
const KubeVersion = localcluster.KubeVersion

// RepoRoot returns the root of the source tree this package was built from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FindBinDir returns the directory holding etcd, kube-apiserver, kubectl and
// helm, or an error naming the make target that builds them.
func FindBinDir() (string, error) {
	dir, err := localcluster.FindBins("", RepoRoot(), "etcd", "kube-apiserver", "kubectl", "helm")
	if err != nil {
		return "", fmt.Errorf("testbed: %w", err)
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
