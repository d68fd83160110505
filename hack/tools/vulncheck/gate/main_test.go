package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stream is govulncheck JSON: one OSV entry, a module-level finding of
// another (required, never called) and a called finding of the first.
const stream = `{"config": {"scanner_name": "govulncheck"}}
{"osv": {"id": "GO-2026-0001", "summary": "A bad thing in net/http"}}
{"finding": {"osv": "GO-2026-0002", "fixed_version": "v0.62.0", "trace": [{"module": "golang.org/x/net", "version": "v0.60.0"}]}}
{"finding": {"osv": "GO-2026-0001", "fixed_version": "v1.26.9", "trace": [
  {"module": "stdlib", "version": "v1.26.8", "package": "net/http", "function": "Serve", "receiver": "*Server"},
  {"module": "example.com/m", "package": "example.com/m/gateway", "function": "Start", "position": {"filename": "gateway/start.go", "line": 42}}]}}
`

func accepted(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "accepted.txt")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTheGateFailsOnACalledVulnerabilityThatIsNotAccepted(t *testing.T) {
	var out strings.Builder
	code, err := run(strings.NewReader(stream), &out, "")
	if err != nil || code != 3 {
		t.Fatalf("code %d, err %v; want 3", code, err)
	}
	for _, want := range []string{"VULNERABLE GO-2026-0001 stdlib@v1.26.8 (fixed in v1.26.9): A bad thing in net/http", "gateway/start.go:42: gateway.Start → http.Server.Serve", "reaches 1 vulnerabilities"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "GO-2026-0002") {
		t.Errorf("a module that is only required is reported as reached:\n%s", out.String())
	}
}

func TestTheGatePassesAnAcceptedVulnerabilityAndNamesStaleEntries(t *testing.T) {
	var out strings.Builder
	file := accepted(t, "# comment\n\nGO-2026-0001 stdlib not reachable from a listener\nGO-2026-0009 stdlib fixed long ago\n")
	code, err := run(strings.NewReader(stream), &out, file)
	if err != nil || code != 0 {
		t.Fatalf("code %d, err %v; want 0\n%s", code, err, out.String())
	}
	for _, want := range []string{"accepted GO-2026-0001", "stale: GO-2026-0009"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestTheGateAcceptsAVulnerabilityOnlyInTheModuleNamed(t *testing.T) {
	code, err := run(strings.NewReader(stream), &strings.Builder{}, accepted(t, "GO-2026-0001 golang.org/x/net wrong module\n"))
	if err != nil || code != 3 {
		t.Fatalf("code %d, err %v; want 3", code, err)
	}
}

func TestTheGateRefusesAnAcceptedLineWithoutAReasonAndAnEmptyStream(t *testing.T) {
	for name, tt := range map[string]struct{ in, accepted string }{
		"no reason":    {stream, "GO-2026-0001 stdlib\n"},
		"not an ID":    {stream, "CVE-2026-1 stdlib reason\n"},
		"twice":        {stream, "GO-2026-0001 stdlib a\nGO-2026-0001 stdlib b\n"},
		"empty stream": {"", ""},
		"not JSON":     {"Scanning your code…\n", ""},
	} {
		t.Run(name, func(t *testing.T) {
			file := ""
			if tt.accepted != "" {
				file = accepted(t, tt.accepted)
			}
			if _, err := run(strings.NewReader(tt.in), &strings.Builder{}, file); err == nil {
				t.Error("no error")
			}
		})
	}
}
