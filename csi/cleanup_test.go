//go:build integration

package csi_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/connectors-io/connectors/csi"
)

// bindMount mounts a fresh directory holding the file "sentinel" at
// mountPoint until the test ends, and returns the sentinel's path in the
// source directory.
func bindMount(t *testing.T, mountPoint string) string {
	t.Helper()
	src := t.TempDir()
	sentinel := filepath.Join(src, "sentinel")
	if err := os.WriteFile(sentinel, []byte("not the driver's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(mountPoint, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, mountPoint, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mountPoint, unix.MNT_DETACH) })
	return sentinel
}

func TestCleanupTouchesOnlyWhatTheDriverMade(t *testing.T) {
	ns := namespace(t)
	applyQuickstart(t, ns)
	pod := cp.CreatePod(t, ns, "cleanup", "default")
	d := startDriver(t, nil)
	plain := startDriver(t, func(o *csi.Options) { o.PlainDirectory = true })
	attrs := map[string]string{"connector.name": "k8s-connector", "configuration.names": "kubeconfig"}

	for i, tc := range []struct {
		name string
		// run prepares and exercises the target and returns the files that
		// must survive.
		run func(t *testing.T, target string) []string
	}{
		{name: "a failed first publish keeps a directory that held foreign files", run: func(t *testing.T, target string) []string {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			foreign := filepath.Join(target, "foreign.txt")
			if err := os.WriteFile(foreign, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := d.node.NodePublishVolume(t.Context(), publishRequest(pod, "c", target, map[string]string{"connector.name": "nope"}))
			if status.Code(err) != codes.NotFound {
				t.Fatalf("publish: %v, want NotFound", err)
			}
			if typ := mountType(t, target); typ != "" {
				t.Errorf("target is still a %s mount", typ)
			}
			return []string{foreign}
		}},
		{name: "unpublish leaves a mount of another filesystem type mounted", run: func(t *testing.T, target string) []string {
			sentinel := bindMount(t, target)
			_, err := d.node.NodeUnpublishVolume(t.Context(), &csipb.NodeUnpublishVolumeRequest{VolumeId: "c", TargetPath: target})
			if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "did not make") {
				t.Errorf("unpublish: %v, want FailedPrecondition", err)
			}
			if mountType(t, target) == "" {
				t.Error("the foreign mount was unmounted")
			}
			return []string{sentinel, filepath.Join(target, "sentinel")}
		}},
		{name: "a publish onto a mount of another filesystem type is refused and writes nothing into it", run: func(t *testing.T, target string) []string {
			sentinel := bindMount(t, target)
			_, err := d.node.NodePublishVolume(t.Context(), publishRequest(pod, "c", target, attrs))
			if status.Code(err) != codes.FailedPrecondition {
				t.Errorf("publish: %v, want FailedPrecondition", err)
			}
			if entries, _ := os.ReadDir(filepath.Dir(sentinel)); len(entries) != 1 {
				t.Errorf("the foreign mount holds %d entries, want only its sentinel", len(entries))
			}
			return []string{sentinel}
		}},
		{name: "unpublish never deletes through a mount nested in the target", run: func(t *testing.T, target string) []string {
			if _, err := plain.node.NodePublishVolume(t.Context(), publishRequest(pod, "c", target, attrs)); err != nil {
				t.Fatal(err)
			}
			captured.Rendered(readFiles(t, target))
			sentinel := bindMount(t, filepath.Join(target, "nested"))
			_, err := plain.node.NodeUnpublishVolume(t.Context(), &csipb.NodeUnpublishVolumeRequest{VolumeId: "c", TargetPath: target})
			if status.Code(err) != codes.FailedPrecondition {
				t.Errorf("unpublish: %v, want FailedPrecondition", err)
			}
			return []string{sentinel}
		}},
		{name: "unpublish of a plain directory removes only the driver's own entries", run: func(t *testing.T, target string) []string {
			if _, err := plain.node.NodePublishVolume(t.Context(), publishRequest(pod, "c", target, attrs)); err != nil {
				t.Fatal(err)
			}
			captured.Rendered(readFiles(t, target))
			notes := filepath.Join(target, "notes.txt")
			if err := os.WriteFile(notes, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := plain.node.NodeUnpublishVolume(t.Context(), &csipb.NodeUnpublishVolumeRequest{VolumeId: "c", TargetPath: target}); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(target)
			if err != nil || len(entries) != 1 {
				t.Errorf("target holds %d entries (%v), want only notes.txt", len(entries), err)
			}
			return []string{notes}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := d.target(t, "cleanup"+string(rune('a'+i)))
			for _, p := range tc.run(t, target) {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s is gone: %v", p, err)
				}
			}
		})
	}
}

func TestTheDriverRefusesWhatItCannotServeSafely(t *testing.T) {
	ns := namespace(t)
	applyQuickstart(t, ns)
	pod := cp.CreatePod(t, ns, "refuse", "default")
	t.Run("a tmpfs smaller than two generations of the files is refused", func(t *testing.T) {
		_, err := csi.New(csi.Options{Endpoint: "unix:///tmp/x.sock", NodeID: "n", Reader: cp.Client, Clientset: cp.Clientset, ProxyCACert: gatewayCA, TmpfsBytes: 8 << 20})
		if err == nil || !strings.Contains(err.Error(), "two generations") {
			t.Errorf("New = %v, want a refusal of the tmpfs size", err)
		}
	})
	t.Run("a target outside the kubelet root is refused when one is set", func(t *testing.T) {
		d := startDriver(t, func(o *csi.Options) { o.KubeletRoot = "/var/lib/kubelet" })
		target := d.target(t, "outside")
		_, err := d.node.NodePublishVolume(t.Context(), publishRequest(pod, "o", target, map[string]string{"connector.name": "k8s-connector"}))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "kubernetes.io~csi") {
			t.Errorf("publish: %v, want InvalidArgument", err)
		}
		_, err = d.node.NodeUnpublishVolume(t.Context(), &csipb.NodeUnpublishVolumeRequest{VolumeId: "o", TargetPath: "/etc"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("unpublish of /etc: %v, want InvalidArgument", err)
		}
	})
}

func TestTheKubeletTokenOfTheConfiguredAudienceIsUsed(t *testing.T) {
	ns := namespace(t)
	applyQuickstart(t, ns)
	pod := cp.CreatePod(t, ns, "audience", "default")
	d := startDriver(t, func(o *csi.Options) { o.Audience = "custom-proxy" })
	const tok = "kubelet-token-for-custom-proxy"
	captured.Secret(tok)
	b, err := json.Marshal(map[string]any{"custom-proxy": map[string]any{"token": tok, "expirationTimestamp": time.Now().Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	target := d.target(t, "audience")
	req := publishRequest(pod, "audience", target, map[string]string{"connector.name": "k8s-connector", csi.KeyServiceAccountTokens: string(b)})
	if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	files := readFiles(t, target)
	captured.Rendered(files)
	if files["context.token"] != tok {
		t.Error("context.token is not the kubelet's token of the configured audience")
	}
}
