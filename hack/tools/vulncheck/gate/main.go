// Command gate reads govulncheck's JSON output (-format json) on stdin and
// fails when the code reaches a vulnerability that is not accepted.
//
// govulncheck reports a finding at three levels: the module is required,
// a vulnerable package is imported, a vulnerable function is called. Only
// the last (a trace whose first frame names a function) is reached, and
// only those make the gate fail, as they make `govulncheck` fail in its
// default text mode.
//
// An accepted vulnerability is a line of the -accepted file:
//
//	GO-YYYY-NNNN MODULE  why it is accepted, and what ends it
//
// MODULE is the module the finding is in ("stdlib" for the standard
// library); the reason is required. Blank lines and lines starting with #
// are ignored. An accepted finding is listed, not failed; an entry that no
// longer matches a finding is reported as stale (the fix landed: remove
// it), without failing.
//
// Usage:
//
//	govulncheck -format json ./... | gate -accepted accepted.txt
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	accepted := flag.String("accepted", "", "the file of accepted vulnerabilities (ID MODULE reason)")
	flag.Parse()
	code, err := run(os.Stdin, os.Stdout, *accepted)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck gate:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// message is one object of govulncheck's JSON stream (only the fields the
// gate reads).
type message struct {
	OSV     *osvEntry `json:"osv"`
	Finding *finding  `json:"finding"`
}

type osvEntry struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

type finding struct {
	OSV          string  `json:"osv"`
	FixedVersion string  `json:"fixed_version"`
	Trace        []frame `json:"trace"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

// reached is one vulnerability the code calls, with one example trace.
type reached struct {
	id, module, version, fixed, summary, example string
}

// run reads the stream from in, writes the report to out and returns the
// exit code: 0 when every reached vulnerability is accepted, 3 (as
// govulncheck) when one is not.
func run(in io.Reader, out io.Writer, acceptedFile string) (int, error) {
	accepted, err := readAccepted(acceptedFile)
	if err != nil {
		return 0, err
	}
	summaries := map[string]string{}
	found := map[string]*reached{}
	dec := json.NewDecoder(bufio.NewReader(in))
	messages := 0
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, fmt.Errorf("reading govulncheck's JSON: %w", err)
		}
		messages++
		if m.OSV != nil {
			summaries[m.OSV.ID] = m.OSV.Summary
		}
		if f := m.Finding; f != nil && len(f.Trace) > 0 && f.Trace[0].Function != "" {
			if _, ok := found[f.OSV]; !ok {
				found[f.OSV] = &reached{id: f.OSV, module: f.Trace[0].Module, version: f.Trace[0].Version, fixed: f.FixedVersion, example: describe(f.Trace)}
			}
		}
	}
	if messages == 0 {
		return 0, errors.New("govulncheck wrote nothing: did it run?")
	}
	var failed, ok []*reached
	for _, r := range found {
		r.summary = summaries[r.id]
		if a, yes := accepted[r.id]; yes && a.module == r.module {
			a.used = true
			ok = append(ok, r)
		} else {
			failed = append(failed, r)
		}
	}
	byID := func(s []*reached) { sort.Slice(s, func(i, j int) bool { return s[i].id < s[j].id }) }
	byID(failed)
	byID(ok)
	for _, r := range failed {
		fmt.Fprintf(out, "VULNERABLE %s %s@%s (fixed in %s): %s\n    reached: %s\n", r.id, r.module, r.version, orNone(r.fixed), r.summary, r.example)
	}
	if len(ok) > 0 {
		fmt.Fprintf(out, "%d reached vulnerabilities are accepted in %s:\n", len(ok), acceptedFile)
		for _, r := range ok {
			fmt.Fprintf(out, "  accepted %s %s@%s (fixed in %s): %s\n", r.id, r.module, r.version, orNone(r.fixed), r.summary)
		}
	}
	var stale []string
	for id, a := range accepted {
		if !a.used {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)
	for _, id := range stale {
		fmt.Fprintf(out, "stale: %s is accepted but no longer reached; remove it from %s\n", id, acceptedFile)
	}
	if len(failed) > 0 {
		fmt.Fprintf(out, "govulncheck: the code reaches %d vulnerabilities that are not accepted\n", len(failed))
		return 3, nil
	}
	fmt.Fprintf(out, "govulncheck: no vulnerability reached but the %d accepted\n", len(ok))
	return 0, nil
}

// acceptance is one line of the accepted file.
type acceptance struct {
	module string
	used   bool
}

func readAccepted(path string) (map[string]*acceptance, error) {
	out := map[string]*acceptance{}
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the accepted vulnerabilities: %w", err)
	}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || !strings.HasPrefix(fields[0], "GO-") {
			return nil, fmt.Errorf("%s:%d: want \"GO-YYYY-NNNN MODULE reason\"", path, n+1)
		}
		if _, dup := out[fields[0]]; dup {
			return nil, fmt.Errorf("%s:%d: %s is accepted twice", path, n+1, fields[0])
		}
		out[fields[0]] = &acceptance{module: fields[1]}
	}
	return out, nil
}

// describe renders a trace as "file:line: pkg.Func → … → vulnerable".
func describe(trace []frame) string {
	var parts []string
	for i := len(trace) - 1; i >= 0; i-- {
		f := trace[i]
		name := f.Function
		if f.Receiver != "" {
			name = strings.TrimPrefix(f.Receiver, "*") + "." + name
		}
		if f.Package != "" {
			name = f.Package[strings.LastIndex(f.Package, "/")+1:] + "." + name
		}
		parts = append(parts, name)
	}
	s := strings.Join(parts, " → ")
	if p := trace[len(trace)-1].Position; p != nil {
		s = fmt.Sprintf("%s:%d: %s", p.Filename, p.Line, s)
	}
	return s
}

func orNone(v string) string {
	if v == "" {
		return "no version yet"
	}
	return v
}
