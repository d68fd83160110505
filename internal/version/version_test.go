package version_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/connectors-io/connectors/internal/version"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		check   func(t *testing.T, out string)
		wantErr string
	}{
		{
			name: "the default format is one line naming the binary and the Go version",
			check: func(t *testing.T, out string) {
				if !strings.HasPrefix(out, "connectors ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, "go1.") {
					t.Errorf("output %q, want one line like `connectors devel (go1.x, linux/amd64)`", out)
				}
			},
		},
		{
			name:   "json prints the fields as JSON",
			format: "json",
			check: func(t *testing.T, out string) {
				var info map[string]string
				if err := json.Unmarshal([]byte(out), &info); err != nil {
					t.Fatalf("output %q is not JSON: %v", out, err)
				}
				for _, k := range []string{"version", "goVersion", "platform"} {
					if info[k] == "" {
						t.Errorf("field %s is empty in %q", k, out)
					}
				}
			},
		},
		{
			name:    "an unknown output format is an error that names the valid ones",
			format:  "yaml",
			wantErr: `unknown output format "yaml": use json or leave it empty`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := version.Get().Write(&out, tt.format)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, out.String())
		})
	}
}
