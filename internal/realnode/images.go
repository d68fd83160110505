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
)

// BuildImages writes the node's images into the images/ directory, from
// which Up loads them into containerd: the pause image, the quick start's
// bitnami/kubectl:1.30.1 (Debian's busybox-static and a static kubectl
// v1.30.1, entrypoint kubectl, user 1001, as the original image lays them
// out) and a busybox for test workloads.
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
