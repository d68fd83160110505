package csi

import (
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/connectors-io/connectors/tokens"
)

// FuzzVolumeAttributes: the volume attributes a pod spec sets
// (configuration.names, configuration.params, token.expiration) parse
// without panic, and what passes is within bounds.
func FuzzVolumeAttributes(f *testing.F) {
	for _, s := range [][3]string{
		{"kubeconfig", "", ""}, {"kubeconfig,gitconfig", `{"settings":{"mirrorRepository":"maven-public"}}`, "30m"},
		{"", `{"a":{"b":1,"c":true,"d":null}}`, "10m"}, {",,", "[]", "-1s"}, {"a:b", `{"a":"b"}`, "1000000h"},
		{"kubeconfig", `{"x":{"y":{"z":1}}}`, "9223372036854775807ns"}, {"../../etc/passwd", "{", "0x10m"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, names, params, expiration string) {
		req := &csipb.NodePublishVolumeRequest{
			VolumeId: "csi-1", TargetPath: "/var/lib/kubelet/pods/1/volumes/x", Readonly: true,
			VolumeCapability: &csipb.VolumeCapability{AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}}},
			VolumeContext: map[string]string{
				KeyEphemeral: "true", KeyPodName: "p", KeyPodNamespace: "ns", KeyPodUID: "u", KeyServiceAccountName: "sa",
				AttrConnectorName: "c", AttrConfigurationNames: names, AttrConfigurationParams: params, AttrTokenExpiration: expiration,
			},
		}
		r, err := parsePublish(req, tokens.DefaultAudience)
		if err != nil {
			return
		}
		if r.expiration < tokens.MinExpiration || r.expiration > MaxTokenExpiration {
			t.Fatalf("token.expiration %q gave %s, outside %s..%s", expiration, r.expiration, tokens.MinExpiration, MaxTokenExpiration)
		}
		if params != "" && r.configParams == nil {
			t.Fatalf("configuration.params %q accepted but not read", params)
		}
	})
}
