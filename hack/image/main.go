// Command image builds the Connectors container image without a Docker
// daemon (internal/ociimage, go-containerregistry) and writes it as a
// tarball that `ctr images import`, `docker load` and `podman load` read.
// `make image` runs it.
//
//	image -binary bin/connectors -ref ghcr.io/connectors-io/connectors:TAG \
//	      -version V -revision R -o bin/connectors-image.tar
//
// The image: the static connectors binary at /usr/local/bin/connectors (the
// entrypoint: every subcommand is an argument), the CA certificates of this
// machine's ca-certificates package, the user nonroot (65532:65532) with its
// home, /tmp and /var/lib/connectors, no shell and nothing else; OCI labels name the source,
// version and revision. The Dockerfile at the repository's root makes the
// same layout.
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/connectors-io/connectors/internal/ociimage"
)

// caBundle is where Debian's ca-certificates package keeps the bundle, and
// where Go's crypto/x509 looks first.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	binary := fs.String("binary", "bin/connectors", "the connectors binary (static: CGO_ENABLED=0)")
	ref := fs.String("ref", "ghcr.io/connectors-io/connectors:dev", "image reference to tag the image with")
	version := fs.String("version", "dev", "version label (org.opencontainers.image.version)")
	revision := fs.String("revision", "", "source revision label (org.opencontainers.image.revision)")
	out := fs.String("o", "bin/connectors-image.tar", "tarball to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkStatic(*binary); err != nil {
		return err
	}
	if _, err := os.Stat(caBundle); err != nil {
		return fmt.Errorf("the CA bundle: %w (apt-get install -y ca-certificates)", err)
	}
	img, err := ociimage.Build(Spec(*binary, *version, *revision))
	if err != nil {
		return err
	}
	if err := ociimage.WriteTarball(*out, map[string]v1.Image{*ref: img}); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	fmt.Printf("%s %s %s\n", *out, *ref, digest)
	return nil
}

// Spec is the image's layout.
func Spec(binary, version, revision string) ociimage.Spec {
	const uid = 65532
	labels := map[string]string{
		"org.opencontainers.image.title":       "connectors",
		"org.opencontainers.image.description": "Connectors: the gateway, controller, control API and CSI driver (one binary, one subcommand each)",
		"org.opencontainers.image.source":      "https://github.com/connectors-io/connectors",
		"org.opencontainers.image.url":         "https://github.com/connectors-io/connectors",
		"org.opencontainers.image.version":     version,
	}
	if revision != "" {
		labels["org.opencontainers.image.revision"] = revision
	}
	return ociimage.Spec{
		Files: []ociimage.File{
			{Path: "/usr/local/bin/connectors", Source: binary, Mode: 0o755},
			{Path: caBundle, Source: caBundle, Mode: 0o644},
			{Path: "/etc/passwd", Content: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid)},
			{Path: "/etc/group", Content: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", uid)},
			{Path: "/etc/nsswitch.conf", Content: []byte("hosts: files dns\n")},
		},
		Dirs: []ociimage.Dir{
			{Path: "/tmp", Mode: 0o1777},
			{Path: "/home/nonroot", Mode: 0o700, UID: uid, GID: uid},
			// State of the local stack (compose.yaml mounts a volume here,
			// which takes this owner on first use).
			{Path: "/var/lib/connectors", Mode: 0o700, UID: uid, GID: uid},
		},
		Entrypoint: []string{"/usr/local/bin/connectors"},
		User:       fmt.Sprintf("%d:%d", uid, uid),
		WorkingDir: "/home/nonroot",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + caBundle},
		Labels:     labels,
	}
}

// checkStatic refuses a binary that needs a dynamic loader: the image has
// none.
func checkStatic(binary string) error {
	f, err := elf.Open(binary)
	if err != nil {
		return fmt.Errorf("the connectors binary %s: %w (make build)", binary, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("the connectors binary " + binary + " is dynamically linked; build it with CGO_ENABLED=0 (make build does)")
		}
	}
	return nil
}
