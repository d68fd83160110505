package localcluster_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectors-io/connectors/internal/localcluster"
)

func TestFindBinsNamesTheMissingBinaryAndTheMakeTarget(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "etcd"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := localcluster.FindBins(dir, "", "etcd", "kube-apiserver")
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver is missing from "+dir) || !strings.Contains(err.Error(), "make test-bins") {
		t.Fatalf("err = %v, want it to name kube-apiserver and make test-bins", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kube-apiserver"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := localcluster.FindBins(dir, "", "etcd", "kube-apiserver"); err == nil {
		t.Error("a binary that is not executable was accepted")
	}
	if err := os.Chmod(filepath.Join(dir, "kube-apiserver"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := localcluster.FindBins(dir, "", "etcd", "kube-apiserver")
	if err != nil || got != dir {
		t.Errorf("FindBins = %q, %v; want %s", got, err, dir)
	}
}

func TestBinsDirPrefersTheFlagThenTheEnvironment(t *testing.T) {
	t.Setenv(localcluster.BinsEnv, "/from/env")
	if got := localcluster.BinsDir("/from/flag", "/repo"); got != "/from/flag" {
		t.Errorf("with a flag: %s", got)
	}
	if got := localcluster.BinsDir("", "/repo"); got != "/from/env" {
		t.Errorf("with the environment: %s", got)
	}
	t.Setenv(localcluster.BinsEnv, "")
	if got := localcluster.BinsDir("", "/repo"); got != "/repo/bin/k8s/"+localcluster.KubeVersion {
		t.Errorf("by default: %s", got)
	}
}
