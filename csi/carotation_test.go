//go:build integration

package csi_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/internal/testbed"
)

func TestARepublishAfterACARotationRewritesTheCA(t *testing.T) {
	ns := namespace(t)
	applyQuickstart(t, ns)
	pod := cp.CreatePod(t, ns, "rotation", "default")
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, gatewayCA, 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDriver(t, func(o *csi.Options) { o.ProxyCACert, o.ProxyCA = nil, csi.CAFile(caFile) })
	target := d.target(t, "rotation")
	req := publishRequest(pod, "rotation", target, map[string]string{"connector.name": "k8s-connector", "configuration.names": "kubeconfig"})
	rotated, err := testbed.SelfSignedCA("rotated gateway CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name  string
		write []byte
		want  []byte
	}{
		{name: "the first publish writes the CA of the file", want: gatewayCA},
		{name: "a republish with the CA unchanged keeps it", want: gatewayCA},
		{name: "a republish after the file was replaced writes the new CA", write: rotated, want: rotated},
	} {
		if step.write != nil {
			tmp := caFile + ".new"
			if err := os.WriteFile(tmp, step.write, 0o600); err != nil {
				t.Fatal(err)
			}
			// A rotated Secret volume gets a new file (and mtime).
			if err := os.Chtimes(tmp, time.Now().Add(time.Minute), time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, caFile); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		files := readFiles(t, target)
		captured.Rendered(files)
		cfg, err := clientcmd.Load([]byte(files["kubeconfig"]))
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if files["ca.crt"] != string(step.want) || files["context.proxy.caCert"] != string(step.want) ||
			!bytes.Equal(cfg.Clusters["k8s"].CertificateAuthorityData, step.want) {
			t.Errorf("%s: ca.crt, context.proxy.caCert or the kubeconfig's certificate-authority-data is not the expected CA", step.name)
		}
	}
}
