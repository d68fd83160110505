package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectors-io/connectors/internal/ociimage"
)

func TestTheImageRunsTheBinaryAsNonRootWithCACertificatesAndNoShell(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "connectors")
	if err := os.WriteFile(bin, []byte("not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := Spec(bin, "1.2.3", "abc123")
	if _, err := os.Stat(caBundle); err != nil {
		// The unit tier needs nothing installed: drop the bundle, check the rest.
		var files []ociimage.File
		for _, f := range spec.Files {
			if f.Path != caBundle {
				files = append(files, f)
			}
		}
		spec.Files = files
		t.Logf("no %s here; the layout is checked without it", caBundle)
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/connectors" {
		t.Errorf("user %q entrypoint %v, want 65532:65532 and the binary", c.User, c.Entrypoint)
	}
	for k, want := range map[string]string{"org.opencontainers.image.version": "1.2.3", "org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.source": "https://github.com/connectors-io/connectors"} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v %v", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	paths := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		paths["/"+strings.TrimPrefix(strings.TrimSuffix(h.Name, "/"), "/")] = h
	}
	for _, p := range []string{"/usr/local/bin/connectors", "/etc/passwd", "/tmp", "/home/nonroot", "/var/lib/connectors"} {
		if paths[p] == nil {
			t.Errorf("the image has no %s", p)
		}
	}
	if h := paths["/var/lib/connectors"]; h != nil && (h.Uid != 65532 || h.Mode&0o777 != 0o700) {
		t.Errorf("/var/lib/connectors is owned by %d with mode %o, want 65532 and 0700", h.Uid, h.Mode&0o777)
	}
	for p := range paths {
		if strings.HasSuffix(p, "/sh") || strings.HasSuffix(p, "/bash") || strings.HasSuffix(p, "/busybox") {
			t.Errorf("the image has a shell: %s", p)
		}
	}
}

func TestADynamicallyLinkedBinaryIsRefused(t *testing.T) {
	if err := checkStatic(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("a missing binary: err = %v, want one naming make build", err)
	}
	// Debian's coreutils are dynamically linked.
	if err := checkStatic("/bin/ls"); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("/bin/ls: err = %v, want a refusal naming CGO_ENABLED=0", err)
	}
}
