package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
)

// KubeVersion is the version of kube-apiserver and kubectl in the test-bed
// binaries (hack/tools/kube).
const KubeVersion = "v1.37.2"

// BinsEnv names the directory of the test-bed binaries, when set.
const BinsEnv = "CONNECTORS_TEST_BINS"

// BinsDir returns where the test-bed binaries are looked for: dir if given,
// else $CONNECTORS_TEST_BINS, else bin/k8s/<KubeVersion> under root.
func BinsDir(dir, root string) string {
	if dir == "" {
		dir = os.Getenv(BinsEnv)
	}
	if dir == "" {
		dir = filepath.Join(root, "bin", "k8s", KubeVersion)
	}
	return dir
}

// MissingBin returns the first of names that is not an executable file in
// dir, or "" when all are.
func MissingBin(dir string, names ...string) string {
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return n
		}
	}
	return ""
}

// FindBins returns the absolute directory holding names (see BinsDir), or
// an error naming the first missing binary and the make target that builds
// the test-bed binaries.
func FindBins(dir, root string, names ...string) (string, error) {
	dir = BinsDir(dir, root)
	if n := MissingBin(dir, names...); n != "" {
		return "", fmt.Errorf("%s is missing from %s: run `make test-bins` in the source tree "+
			"(builds the test-bed binaries once, about 20 minutes cold), or set %s", n, dir, BinsEnv)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("test-bed binaries: %w", err)
	}
	return abs, nil
}
