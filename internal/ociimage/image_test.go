package ociimage_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/connectors-io/connectors/internal/ociimage"
)

func TestAnImageHoldsItsFilesAndConfigAndIsDeterministic(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := ociimage.Spec{
		Files:      []ociimage.File{{Path: "/opt/tool/bin/tool", Source: src}, {Path: "/etc/passwd", Content: []byte("root:x:0:0::/:/bin/sh\n")}},
		Dirs:       []ociimage.Dir{{Path: "/tmp", Mode: 0o1777}},
		Symlinks:   map[string]string{"/usr/local/bin/tool": "/opt/tool/bin/tool"},
		Entrypoint: []string{"tool"}, User: "1001", Labels: map[string]string{"org.opencontainers.image.version": "1.0"},
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ociimage.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("the same spec gave the digests %s and %s", d1, d2)
	}

	file := filepath.Join(t.TempDir(), "images.tar")
	if err := ociimage.WriteTarball(file, map[string]v1.Image{"docker.io/example/tool:1.0": img}); err != nil {
		t.Fatal(err)
	}
	if tags, err := ociimage.Tags(file); err != nil || len(tags) != 1 || tags[0] != "docker.io/example/tool:1.0" {
		t.Errorf("Tags = %v, %v; want the one reference", tags, err)
	}
	tag, _ := name.NewTag("docker.io/example/tool:1.0")
	read, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := read.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "tool" || cf.Config.User != "1001" || cf.Config.Labels["org.opencontainers.image.version"] != "1.0" {
		t.Errorf("config = %+v", cf.Config)
	}
	layers, err := read.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v, %v; want one", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	got := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	for name, check := range map[string]func(*tar.Header) bool{
		"opt/":               func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir },
		"opt/tool/bin/tool":  func(h *tar.Header) bool { return h.Mode == 0o755 && h.Size > 0 },
		"etc/passwd":         func(h *tar.Header) bool { return h.Mode == 0o644 },
		"tmp/":               func(h *tar.Header) bool { return h.Mode == 0o1777 },
		"usr/local/bin/tool": func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == "/opt/tool/bin/tool" },
		"usr/local/bin/":     func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir },
	} {
		if h, ok := got[name]; !ok || !check(h) || h.ModTime.Unix() != 0 {
			t.Errorf("layer entry %s = %+v", name, h)
		}
	}
}

func TestARelativePathIsRefused(t *testing.T) {
	if _, err := ociimage.Build(ociimage.Spec{Files: []ociimage.File{{Path: "etc/passwd"}}}); err == nil {
		t.Error("a relative file path was accepted")
	}
}
