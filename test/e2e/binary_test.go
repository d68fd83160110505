//go:build e2e

package e2e

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestTheBinaryPrintsItsVersionAndRefusesWhatItDoesNotKnow(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		say      string
	}{
		{name: "version prints one line naming the binary", args: []string{"version"}, say: "connectors "},
		{name: "version -o json prints JSON", args: []string{"version", "-o", "json"}, say: `"goVersion":`},
		{name: "an unknown output format exits 1 naming the valid ones", args: []string{"version", "-o", "yaml"}, wantCode: 1, say: "use json or leave it empty"},
		{name: "an unknown subcommand exits 1", args: []string{"frobnicate"}, wantCode: 1, say: `unknown command "frobnicate"`},
		{name: "the gateway without its files exits 1 naming them", args: []string{"gateway"}, wantCode: 1, say: "--ca-cert-file, --ca-key-file and --shared-key-file are required"},
		{name: "the CSI driver without the gateway CA exits 1", args: []string{"csi"}, wantCode: 1, say: "--proxy-ca-file is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), bin, tc.args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				code = ee.ExitCode()
			case err != nil:
				t.Fatal(err)
			}
			if code != tc.wantCode || !strings.Contains(string(out), tc.say) {
				t.Errorf("exit %d, output %q; want exit %d saying %q", code, out, tc.wantCode, tc.say)
			}
		})
	}
}
