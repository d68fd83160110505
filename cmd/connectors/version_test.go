package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func TestVersionCommand(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, out string)
		wantErr string
	}{
		{
			name: "version prints one line naming the binary and the Go version",
			args: []string{"version"},
			check: func(t *testing.T, out string) {
				if !strings.HasPrefix(out, "connectors ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, "go1.") {
					t.Errorf("output %q, want one line like `connectors devel (go1.x, linux/amd64)`", out)
				}
			},
		},
		{
			name: "version -o json prints the fields as JSON",
			args: []string{"version", "-o", "json"},
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
			args:    []string{"version", "-o", "yaml"},
			wantErr: `unknown output format "yaml": use json or leave it empty`,
		},
		{
			name:    "an unknown subcommand is an error",
			args:    []string{"frobnicate"},
			wantErr: `unknown command "frobnicate"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runRoot(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, out)
		})
	}
}
