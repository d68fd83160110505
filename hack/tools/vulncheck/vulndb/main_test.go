package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestLatestFixed(t *testing.T) {
	for _, tc := range []struct {
		name, ranges, want string
	}{
		{"fixed", `[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]`, "1.2.3"},
		{"latest of several", `[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.5.0"},{"introduced":"2.0.0"},{"fixed":"2.4.0"}]}]`, "2.4.0"},
		{"reintroduced", `[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.5.0"},{"introduced":"2.0.0"}]}]`, ""},
		{"never fixed", `[{"type":"SEMVER","events":[{"introduced":"0"}]}]`, ""},
		{"pseudo-version", `[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.0.0-20260626085133-7cb96ac80a6d"}]}]`, "0.0.0-20260626085133-7cb96ac80a6d"},
		{"not semver", `[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ranges []osvRange
			if err := json.Unmarshal([]byte(tc.ranges), &ranges); err != nil {
				t.Fatal(err)
			}
			if got := latestFixed(ranges); got != tc.want {
				t.Errorf("latestFixed = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	src := t.TempDir()
	entries := map[string]string{
		"GO-2099-0001.json": `{"id":"GO-2099-0001","modified":"0001-01-01T00:00:00Z","published":"2099-01-01T00:00:00Z",` +
			`"aliases":["CVE-2099-1"],"summary":"a <b> & c",` +
			`"affected":[{"package":{"name":"example.com/m","ecosystem":"Go"},` +
			`"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}],` +
			`"ecosystem_specific":{"imports":[{"path":"example.com/m/p","symbols":["F"]}]}}],` +
			`"database_specific":{"url":"https://pkg.go.dev/vuln/GO-2099-0001"}}`,
		"GO-2099-0002.json": `{"id":"GO-2099-0002","modified":"2099-02-03T04:05:06Z",` +
			`"affected":[{"package":{"name":"example.com/m","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]},` +
			`{"package":{"name":"stdlib","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.99.1"}]}]}],` +
			`"database_specific":{"url":"https://pkg.go.dev/vuln/GO-2099-0002"}}`,
		"README.md": "not an entry",
	}
	for name, body := range entries {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)
	db, err := load(src, snapshot)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "cache", "db")
	if err := os.MkdirAll(filepath.Join(out, "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := db.write(out); err != nil {
		t.Fatal(err)
	}

	read := func(name string) any {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	for name, want := range map[string]string{
		"index/db.json": `{"modified":"2099-02-03T04:05:06Z"}`,
		"index/modules.json": `[{"path":"example.com/m","vulns":[` +
			`{"id":"GO-2099-0001","modified":"2099-01-02T03:04:05Z","fixed":"1.2.3"},` +
			`{"id":"GO-2099-0002","modified":"2099-02-03T04:05:06Z"}]},` +
			`{"path":"stdlib","vulns":[{"id":"GO-2099-0002","modified":"2099-02-03T04:05:06Z","fixed":"1.99.1"}]}]`,
		"index/vulns.json": `[{"id":"GO-2099-0001","modified":"2099-01-02T03:04:05Z","aliases":["CVE-2099-1"]},` +
			`{"id":"GO-2099-0002","modified":"2099-02-03T04:05:06Z"}]`,
	} {
		var w any
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		if got := read(name); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}

	// The entry keeps its fields but the zero "modified".
	var want map[string]any
	if err := json.Unmarshal([]byte(entries["GO-2099-0001.json"]), &want); err != nil {
		t.Fatal(err)
	}
	want["modified"] = "2099-01-02T03:04:05Z"
	if got := read("ID/GO-2099-0001.json"); !reflect.DeepEqual(got, any(want)) {
		t.Errorf("ID/GO-2099-0001.json = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(out, "stale")); !os.IsNotExist(err) {
		t.Errorf("the old database was not replaced: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*")); len(left) != 0 {
		t.Errorf("temporary directories left: %v", left)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, body := range map[string]string{
		"GO-2099-0003.json": `{"id":"GO-2099-0004","affected":[{"package":{"name":"m"}}]}`,
		"GO-2099-0005.json": `{"id":"GO-2099-0005","database_specific":{"url":"u"}}`,
		"GO-2099-0007.json": `{"id":"GO-2099-0007","affected":[{"package":{"name":"m"}}]}`,
		"GO-2099-0006.json": `{"id":`,
	} {
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := load(src, time.Now()); err == nil {
			t.Errorf("load accepted %s: %s", name, body)
		}
	}
	if _, err := load(t.TempDir(), time.Now()); err == nil {
		t.Error("load accepted an empty directory")
	}
}
