package sandbox_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectors-io/connectors/render/sandbox"
)

func run(t *testing.T, src string, opts sandbox.Options, data any, timeout time.Duration) (string, error) {
	t.Helper()
	tmpl, err := sandbox.Parse("t", src, opts)
	if err != nil {
		return "", err
	}
	out, err := tmpl.Execute(data, 1<<16, timeout)
	return string(out), err
}

func TestSandbox(t *testing.T) {
	opts := sandbox.Options{MaxBytes: 1 << 12}
	strict := sandbox.Options{MaxBytes: 1 << 12, MissingKeyError: true}
	data := map[string]any{"name": "x"}
	for _, tc := range []struct {
		name     string
		src      string
		opts     sandbox.Options
		want     string
		wantErr  error
		wantText string
	}{
		{name: "sprig functions work", src: `{{ .name | upper }}-{{ "a,b" | splitList "," | join "+" }}`, opts: opts, want: "X-a+b"},
		{name: "a missing key prints <no value> by default", src: `{{ .nope }}`, opts: opts, want: "<no value>"},
		{name: "a missing key fails when asked to", src: `{{ .nope }}`, opts: strict, wantErr: sandbox.ErrExecution, wantText: "at t:1:3"},
		{name: "env is not defined", src: `{{ env "HOME" }}`, opts: opts, wantErr: sandbox.ErrParse, wantText: `function "env" not defined`},
		{name: "expandenv is not defined", src: `{{ expandenv "$HOME" }}`, opts: opts, wantErr: sandbox.ErrParse, wantText: `function "expandenv" not defined`},
		{name: "key generation is not defined", src: `{{ genPrivateKey "rsa" }}`, opts: opts, wantErr: sandbox.ErrParse, wantText: "not defined"},
		{name: "a function result over the bound fails", src: `{{ repeat 5000 "x" }}`, opts: opts, wantErr: sandbox.ErrTooLarge, wantText: "repeat would produce 5000"},
		{name: "a failed function's message is withheld", src: `{{ fail "the-secret" }}`, opts: opts, wantErr: sandbox.ErrExecution, wantText: "withheld"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(t, tc.src, tc.opts, data, time.Second)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.wantErr, tc.wantText)
			}
			if strings.Contains(err.Error(), "the-secret") {
				t.Errorf("the error %q carries the template's data", err)
			}
		})
	}
}

func TestARunPastItsTimeIsAbandonedAndItsFunctionsFail(t *testing.T) {
	// About 4 million iterations, each calling a function: far longer than
	// the time bound, and ended early by the abandonment.
	tmpl, err := sandbox.Parse("slow", `{{ range until 2048 }}{{ range until 2048 }}{{ $x := add 1 1 }}{{ end }}{{ end }}`, sandbox.Options{MaxBytes: 1 << 14})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmpl.Execute(nil, 1<<10, 50*time.Millisecond)
	if !errors.Is(err, sandbox.ErrTimeout) || !strings.Contains(err.Error(), "longer than 50ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	// The abandoned run ends at its next function call: a new execution of
	// the same template fails at once.
	if _, err := tmpl.Execute(nil, 1<<10, time.Second); !errors.Is(err, sandbox.ErrExecution) {
		t.Errorf("a second execution of an abandoned template: %v, want an execution error", err)
	}
}
