package sandbox

import (
	"testing"
	"time"
)

// FuzzHostileTemplate: any template parses or fails to, and executes within
// its time limit and output budget, without panic.
func FuzzHostileTemplate(f *testing.F) {
	for _, s := range []string{
		"{{.}}", "{{range $i := until 100000000}}x{{end}}", `{{repeat 100000000 "x"}}`, "{{template \"t\" .}}{{define \"t\"}}{{template \"t\" .}}{{end}}",
		"{{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}", "{{ .a.b.c.d }}", "{{ index . 99 }}", "{{ printf \"%0999999999d\" 1 }}",
		"{{ env \"HOME\" }}", "{{ genPrivateKey \"rsa\" }}", "{{ range . }}{{ . }}{{ end }}", "{{ b64dec \"!!!\" }}", "{{ fromJson \"[\" }}",
	} {
		f.Add(s)
	}
	const budget, limit = 64 << 10, 200 * time.Millisecond
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse("fuzz", src, Options{MaxBytes: budget})
		if err != nil {
			return
		}
		start := time.Now()
		out, _ := tmpl.Execute(map[string]any{"a": map[string]any{"b": "c"}, "list": []any{1, "two"}}, budget, limit)
		if d := time.Since(start); d > limit+time.Second {
			t.Fatalf("ran %s, beyond its limit of %s", d, limit)
		}
		if len(out) > budget {
			t.Fatalf("%d bytes of output, beyond the budget of %d", len(out), budget)
		}
	})
}
