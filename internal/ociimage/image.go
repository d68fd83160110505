package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is a regular file of the image.
type File struct {
	// Path in the image, absolute.
	Path string
	// Source is the file on disk to copy; Content is used when empty.
	Source string
	// Content of the file when there is no Source.
	Content []byte
	// Mode is the permission bits. Default 0644 (0755 for a Source that is
	// executable).
	Mode int64
	// UID and GID own the file. Default 0.
	UID, GID int
}

// Dir is a directory of the image (parents of files are added by
// themselves, mode 0755).
type Dir struct {
	// Path in the image, absolute.
	Path string
	// Mode is the permission bits, for example 01777 for /tmp.
	Mode int64
	// UID and GID own the directory. Default 0.
	UID, GID int
}

// Spec describes a single-layer image.
type Spec struct {
	// Files, Dirs and Symlinks (path in the image → target) make the layer.
	Files    []File
	Dirs     []Dir
	Symlinks map[string]string
	// Entrypoint, Cmd, Env, User and WorkingDir go into the image config.
	Entrypoint, Cmd []string
	Env             []string
	User            string
	WorkingDir      string
	// Labels are the image's labels (for example the OCI annotations
	// org.opencontainers.image.source and .version).
	Labels map[string]string
}

// Build assembles the image of s (linux, this machine's architecture, OCI
// media types).
func Build(s Spec) (v1.Image, error) {
	layerBytes, err := layer(s)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("ociimage: layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		return nil, fmt.Errorf("ociimage: append the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("ociimage: config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	env := s.Env
	if len(env) == 0 {
		env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	cf.Config = v1.Config{Entrypoint: s.Entrypoint, Cmd: s.Cmd, Env: env, User: s.User, WorkingDir: s.WorkingDir, Labels: s.Labels}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("ociimage: config: %w", err)
	}
	return img, nil
}

// entry is one tar entry of the layer.
type entry struct {
	hdr  *tar.Header
	body []byte
}

// layer writes the tar of the spec's files.
func layer(s Spec) ([]byte, error) {
	entries := map[string]*entry{}
	dir := func(p string, mode int64, uid, gid int) {
		entries[p] = &entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: mode, Uid: uid, Gid: gid}}
	}
	var parents func(p string)
	parents = func(p string) {
		d := path.Dir(p)
		if d == "/" || d == "." {
			return
		}
		if _, ok := entries[d]; !ok {
			dir(d, 0o755, 0, 0)
		}
		parents(d)
	}
	clean := func(p string) (string, error) {
		if !path.IsAbs(p) || path.Clean(p) == "/" {
			return "", fmt.Errorf("ociimage: %q is not an absolute path of a file", p)
		}
		return path.Clean(p), nil
	}
	for _, d := range s.Dirs {
		p, err := clean(d.Path)
		if err != nil {
			return nil, err
		}
		mode := d.Mode
		if mode == 0 {
			mode = 0o755
		}
		parents(p)
		dir(p, mode, d.UID, d.GID)
	}
	for _, f := range s.Files {
		p, err := clean(f.Path)
		if err != nil {
			return nil, err
		}
		content, mode := f.Content, f.Mode
		if f.Source != "" {
			fi, err := os.Stat(f.Source)
			if err != nil {
				return nil, fmt.Errorf("ociimage: %w", err)
			}
			if content, err = os.ReadFile(f.Source); err != nil {
				return nil, fmt.Errorf("ociimage: %w", err)
			}
			if mode == 0 {
				mode = 0o644
				if fi.Mode()&0o111 != 0 {
					mode = 0o755
				}
			}
		}
		if mode == 0 {
			mode = 0o644
		}
		parents(p)
		entries[p] = &entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(content)), Uid: f.UID, Gid: f.GID}, body: content}
	}
	for link, target := range s.Symlinks {
		p, err := clean(link)
		if err != nil {
			return nil, err
		}
		if target == "" {
			return nil, errors.New("ociimage: symlink " + p + " has no target")
		}
		parents(p)
		entries[p] = &entry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(p, "/"), Linkname: target, Mode: 0o777}}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names) // parents sort before their children
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime = time.Unix(0, 0)
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("ociimage: layer entry %s: %w", n, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("ociimage: layer entry %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("ociimage: layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteTarball writes the images, each under its references (for example
// docker.io/bitnami/kubectl:1.30.1), into one tarball in the format of
// `docker save`, which `ctr images import` and `docker load` read.
func WriteTarball(file string, images map[string]v1.Image) error {
	refs := make(map[name.Reference]v1.Image, len(images))
	for ref, img := range images {
		tag, err := name.NewTag(ref)
		if err != nil {
			return fmt.Errorf("ociimage: image reference %q: %w", ref, err)
		}
		refs[tag] = img
	}
	if err := tarball.MultiRefWriteToFile(file, refs); err != nil {
		return fmt.Errorf("ociimage: write %s: %w", file, err)
	}
	return nil
}

// Tags returns the references (repository:tag) of the images in a tarball
// that WriteTarball (or `docker save`) wrote.
func Tags(file string) ([]string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		return nil, fmt.Errorf("ociimage: read %s: %w", file, err)
	}
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	return tags, nil
}
