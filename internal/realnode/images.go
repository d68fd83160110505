package realnode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/connectors-io/connectors/internal/ociimage"
)

// Images of the node, built from local files (no registry is reachable).
const (
	// KubectlImage is the quick start's image, holding kubectl v1.30.1.
	KubectlImage = "docker.io/bitnami/kubectl:1.30.1"
	// BusyboxImage is a shell for test workloads.
	BusyboxImage = "realnode.local/busybox:1.35"
	// RedisImage is Debian's redis-server with its libraries, laid out as
	// the official image (/usr/local/bin/redis-server, user redis 999,
	// /data), for the chart's bundled Redis on a node without a registry.
	RedisImage = "realnode.local/redis:7.0"
)

// BuildImages writes the node's images into the images/ directory, from
// which Up loads them into containerd: the pause image, the quick start's
// bitnami/kubectl:1.30.1 (Debian's busybox-static and a static kubectl
// v1.30.1, entrypoint kubectl, user 1001, as the original image lays them
// out), a busybox for test workloads and a Redis (RedisImage).
func (n *Node) BuildImages() error {
	busybox := "/bin/busybox"
	applets, err := busyboxApplets(busybox)
	if err != nil {
		return err
	}
	base := ociimage.Spec{
		Files: []ociimage.File{
			{Path: "/bin/busybox", Source: busybox, Mode: 0o755},
			{Path: "/etc/passwd", Content: []byte("root:x:0:0:root:/root:/bin/sh\nkubectl:x:1001:0:kubectl:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
			{Path: "/etc/group", Content: []byte("root:x:0:\nnobody:x:65534:\n")},
		},
		Dirs:     []ociimage.Dir{{Path: "/tmp", Mode: 0o1777}, {Path: "/root", Mode: 0o700}},
		Symlinks: map[string]string{},
	}
	for _, a := range applets {
		base.Symlinks["/bin/"+a] = "busybox"
	}
	images := map[string]ociimage.Spec{}
	images[PauseImage] = ociimage.Spec{
		Files:      []ociimage.File{{Path: "/pause", Source: filepath.Join(n.opts.NodeBins, "pause"), Mode: 0o755}},
		Entrypoint: []string{"/pause"}, User: "65535:65535",
	}
	bb := base
	bb.Cmd = []string{"/bin/sh"}
	images[BusyboxImage] = bb
	kubectl := base
	kubectl.Files = append(append([]ociimage.File{}, base.Files...),
		ociimage.File{Path: "/opt/bitnami/kubectl/bin/kubectl", Source: filepath.Join(n.opts.NodeBins, "static", "kubectl-v1.30.1"), Mode: 0o755})
	kubectl.Dirs = append(append([]ociimage.Dir{}, base.Dirs...), ociimage.Dir{Path: "/.kube", Mode: 0o777})
	kubectl.Symlinks = map[string]string{"/usr/local/bin/kubectl": "/opt/bitnami/kubectl/bin/kubectl"}
	for k, v := range base.Symlinks {
		kubectl.Symlinks[k] = v
	}
	kubectl.Entrypoint, kubectl.Cmd, kubectl.User = []string{"kubectl"}, []string{"--help"}, "1001"
	kubectl.Env = []string{"PATH=/opt/bitnami/kubectl/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}
	images[KubectlImage] = kubectl
	redis, err := redisImage()
	if err != nil {
		return err
	}
	images[RedisImage] = redis

	if err := os.MkdirAll(n.path("images"), 0o755); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	for ref, spec := range images {
		img, err := ociimage.Build(spec)
		if err != nil {
			return fmt.Errorf("realnode: image %s: %w", ref, err)
		}
		file := n.path("images", strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		if err := ociimage.WriteTarball(file, map[string]v1.Image{ref: img}); err != nil {
			return err
		}
		n.logf("image %s in %s", ref, file)
	}
	return nil
}

// redisImage lays out Debian's redis-server (a symbolic link to
// redis-check-rdb, which acts by the name it is called by) with the shared
// libraries ldd finds for it.
func redisImage() (ociimage.Spec, error) {
	bin, err := filepath.EvalSymlinks("/usr/bin/redis-server")
	if err != nil {
		return ociimage.Spec{}, fmt.Errorf("realnode: redis-server: %w (apt-get install -y redis-server)", err)
	}
	libs, err := sharedLibraries(bin)
	if err != nil {
		return ociimage.Spec{}, err
	}
	files := append(libs,
		ociimage.File{Path: "/usr/local/bin/redis-server", Source: bin, Mode: 0o755},
		ociimage.File{Path: "/etc/passwd", Content: []byte("root:x:0:0:root:/root:/usr/sbin/nologin\nredis:x:999:999:redis:/data:/usr/sbin/nologin\n")},
		ociimage.File{Path: "/etc/group", Content: []byte("root:x:0:\nredis:x:999:\n")})
	return ociimage.Spec{
		Files:      files,
		Dirs:       []ociimage.Dir{{Path: "/data", Mode: 0o755, UID: 999, GID: 999}, {Path: "/tmp", Mode: 0o1777}},
		Cmd:        []string{"redis-server"},
		User:       "999:999",
		WorkingDir: "/data",
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}, nil
}

// sharedLibraries lists the shared libraries (and the loader) of a
// dynamically linked binary, at the paths the binary asks for, copied from
// the files those paths resolve to.
func sharedLibraries(bin string) ([]ociimage.File, error) {
	out, err := execOutput("ldd", bin)
	if err != nil {
		return nil, fmt.Errorf("realnode: ldd %s: %w", bin, err)
	}
	var files []ociimage.File
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		var p string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			p = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			p = f[0] // the loader
		default:
			continue // linux-vdso
		}
		src, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("realnode: %s needs %s: %w", bin, p, err)
		}
		files = append(files, ociimage.File{Path: p, Source: src, Mode: 0o755})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("realnode: ldd found no libraries of %s", bin)
	}
	return files, nil
}

// busyboxApplets lists the applets of a busybox binary.
func busyboxApplets(bin string) ([]string, error) {
	out, err := execOutput(bin, "--list")
	if err != nil {
		return nil, fmt.Errorf("realnode: %s --list: %w (apt-get install -y busybox-static)", bin, err)
	}
	var applets []string
	for _, a := range strings.Fields(out) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	return applets, nil
}
