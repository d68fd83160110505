// Command vulndb builds an offline copy of the Go vulnerability database for
// `govulncheck -db file:///DIR`.
//
// The database served at vuln.go.dev is generated from the OSV entries in the
// golang.org/x/vulndb repository (data/osv/GO-YYYY-NNNN.json). That
// repository is a Go module, so the Go module proxy serves snapshots of it:
// with -version, vulndb downloads one with `go mod download -json` (which
// checks it against the checksum database) and reads its data/osv. With -src
// it reads a directory of OSV files instead (tests, crafted databases).
//
// It writes the database in the v1 layout (https://go.dev/security/vuln/database#api)
// that golang.org/x/vuln/internal/client reads from a file:// source:
//
//	index/db.json       {"modified": the latest "modified" of the entries}
//	index/modules.json  [{"path", "vulns": [{"id", "modified", "fixed"}]}], by path then id
//	index/vulns.json    [{"id", "modified", "aliases"}], by id
//	ID/<id>.json        each OSV entry
//
// The file source reads plain .json (only the https source asks for
// .json.gz, so none is written). govulncheck reads index/db.json (the "DB
// updated" line), index/modules.json (which modules have entries, and the
// latest fix that lets it skip entries fixed below the version in use) and
// ID/<id>.json; index/vulns.json completes the layout. The indexes are built
// as golang.org/x/vulndb/internal/database builds them.
//
// Each entry must be in a file named after its id (GO-YYYY-NNNN.json), name
// the packages it affects and have a database_specific.url, which
// govulncheck's text output needs.
//
// The OSV files in x/vulndb carry a zero "modified" time, which upstream
// fills in from the git history when it deploys the database. Without that
// history, vulndb sets a zero "modified" to the snapshot's time (-modified,
// or the commit time of the downloaded module), an upper bound; it
// leaves "published" as it is.
//
// The database is written to a temporary directory beside -o and renamed to
// -o when complete, so a failed run leaves no partial database; an existing
// -o is replaced.
//
// Usage:
//
//	go run ./vulndb -version v0.0.0-20261105234957-e22db6528018 -o DIR
//	go run ./vulndb -src OSVDIR [-modified 2026-01-02T15:04:05Z] -o DIR
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// vulndbModule is the module whose data/osv holds the database's entries.
const vulndbModule = "golang.org/x/vulndb"

func main() {
	log.SetFlags(0)
	log.SetPrefix("vulndb: ")
	version := flag.String("version", "", "version of "+vulndbModule+" to download and build the database from")
	src := flag.String("src", "", "directory of OSV files (<id>.json) to build the database from, instead of -version")
	modified := flag.String("modified", "", `RFC 3339 time set on entries whose "modified" is zero (default: the module's commit time with -version, the current time with -src)`)
	out := flag.String("o", "", "directory to write the database to (replaced)")
	flag.Parse()
	if flag.NArg() != 0 || *out == "" || (*version == "") == (*src == "") {
		flag.Usage()
		os.Exit(2)
	}
	//nolint:forbidigo // main's root context
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, *version, *src, *modified, *out)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, version, src, modified, out string) error {
	var snapshot time.Time
	if version != "" {
		mod, err := download(ctx, version)
		if err != nil {
			return err
		}
		src, snapshot = filepath.Join(mod.Dir, "data", "osv"), mod.Time
	} else {
		snapshot = time.Now().UTC().Truncate(time.Second)
	}
	if modified != "" {
		t, err := time.Parse(time.RFC3339, modified)
		if err != nil {
			return fmt.Errorf("-modified: %w", err)
		}
		snapshot = t
	}
	db, err := load(src, snapshot)
	if err != nil {
		return err
	}
	if err := db.write(out); err != nil {
		return err
	}
	log.Printf("wrote %d entries for %d modules to %s", len(db.entries), len(db.modules), out)
	return nil
}

// module is what vulndb uses of `go mod download -json`'s output.
type module struct {
	Dir   string
	Info  string
	Error string
	Time  time.Time
}

// download fetches golang.org/x/vulndb@version into the module cache and
// returns where it is and its commit time.
func download(ctx context.Context, version string) (module, error) {
	var mod module
	// Run outside any module, so that no go.mod or go.sum is touched.
	tmp, err := os.MkdirTemp("", "vulndb-download-")
	if err != nil {
		return mod, fmt.Errorf("download: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", vulndbModule+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	// go mod download -json reports a module's failure in its Error field.
	if err := json.Unmarshal(stdout.Bytes(), &mod); err != nil && runErr == nil {
		return mod, fmt.Errorf("go mod download %s@%s: %w", vulndbModule, version, err)
	}
	switch {
	case mod.Error != "":
		return mod, fmt.Errorf("go mod download %s@%s: %s", vulndbModule, version, mod.Error)
	case runErr != nil:
		return mod, fmt.Errorf("go mod download %s@%s: %w: %s", vulndbModule, version, runErr, strings.TrimSpace(stderr.String()))
	case mod.Dir == "" || mod.Info == "":
		return mod, fmt.Errorf("go mod download %s@%s: no Dir or Info in its output", vulndbModule, version)
	}
	info, err := os.ReadFile(mod.Info)
	if err != nil {
		return mod, fmt.Errorf("download: %w", err)
	}
	if err := json.Unmarshal(info, &mod); err != nil {
		return mod, fmt.Errorf("download: %s: %w", mod.Info, err)
	}
	if mod.Time.IsZero() {
		return mod, fmt.Errorf("download: %s has no commit time", mod.Info)
	}
	return mod, nil
}

// entry is what the indexes need of an OSV entry.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
	DatabaseSpecific *struct {
		URL string `json:"url"`
	} `json:"database_specific"`
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced,omitempty"`
		Fixed      string `json:"fixed,omitempty"`
	} `json:"events"`
}

// moduleVuln is one element of a module's "vulns" in index/modules.json.
type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

// vuln is one element of index/vulns.json.
type vuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

// database is a v1 database in memory.
type database struct {
	modified time.Time               // index/db.json
	modules  map[string][]moduleVuln // index/modules.json
	vulns    []vuln                  // index/vulns.json
	entries  map[string][]byte       // ID/<id>.json
}

// idPattern is the form of the Go database's IDs, and so of its file names.
var idPattern = regexp.MustCompile(`^GO-[0-9]{4}-[0-9]{4,}$`)

// load reads every <id>.json in dir and indexes it; a zero "modified" is set
// to snapshot.
func load(dir string, snapshot time.Time) (*database, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("load: no OSV entries (*.json) in %s", dir)
	}
	sort.Strings(files)
	db := &database{modules: map[string][]moduleVuln{}, entries: map[string][]byte{}}
	for _, file := range files {
		if err := db.add(file, snapshot); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	}
	return db, nil
}

func (db *database) add(file string, snapshot time.Time) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var e entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if !idPattern.MatchString(e.ID) || filepath.Base(file) != e.ID+".json" {
		return fmt.Errorf("%s: id %q: want a file named GO-YYYY-NNNN.json holding that id", file, e.ID)
	}
	if len(e.Affected) == 0 {
		return fmt.Errorf("%s: no affected packages", file)
	}
	// govulncheck's text output dereferences it (and panics without it).
	if e.DatabaseSpecific == nil || e.DatabaseSpecific.URL == "" {
		return fmt.Errorf("%s: no database_specific.url", file)
	}
	// Keep every field of the entry as it is, but "modified".
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if e.Modified.IsZero() {
		e.Modified = snapshot
		if fields["modified"], err = json.Marshal(e.Modified); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	if db.entries[e.ID], err = marshal(fields); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}

	if e.Modified.After(db.modified) {
		db.modified = e.Modified
	}
	db.vulns = append(db.vulns, vuln{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
	for _, a := range e.Affected {
		if a.Package.Name == "" {
			return fmt.Errorf("%s: an affected package has no name", file)
		}
		db.modules[a.Package.Name] = append(db.modules[a.Package.Name],
			moduleVuln{ID: e.ID, Modified: e.Modified, Fixed: latestFixed(a.Ranges)})
	}
	return nil
}

// latestFixed returns the version from which on no version in ranges is
// affected, or "" if there is none. It is golang.org/x/vulndb's
// osvutils.LatestFixed, which govulncheck's own index builder copies.
func latestFixed(ranges []osvRange) string {
	var latest string
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, ev := range r.Events {
			if ev.Fixed != "" && less(latest, ev.Fixed) {
				latest = ev.Fixed
			}
		}
		// A vulnerability re-introduced after the latest fix has no fix.
		for _, ev := range r.Events {
			if ev.Introduced != "" && ev.Introduced != "0" && less(latest, ev.Introduced) {
				latest = ""
				break
			}
		}
	}
	return latest
}

// less compares OSV versions, which are semver without the "v"; "" (and
// any invalid version) sorts first.
func less(v1, v2 string) bool {
	return semver.Compare("v"+v1, "v"+v2) < 0
}

// write writes the database to out, through a temporary directory beside it.
func (db *database) write(out string) (err error) {
	out = filepath.Clean(out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := db.writeTo(tmp); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// Rename cannot replace a non-empty directory: move the old one aside.
	old := tmp + ".old"
	if err := os.Rename(out, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (db *database) writeTo(dir string) error {
	for _, sub := range []string{"index", "ID"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	for id, b := range db.entries {
		if err := os.WriteFile(filepath.Join(dir, "ID", id+".json"), b, 0o644); err != nil {
			return err
		}
	}

	type module struct {
		Path  string       `json:"path"`
		Vulns []moduleVuln `json:"vulns"`
	}
	modules := make([]module, 0, len(db.modules))
	for path, vulns := range db.modules {
		sort.SliceStable(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })
		modules = append(modules, module{Path: path, Vulns: vulns})
	}
	sort.Slice(modules, func(i, j int) bool { return modules[i].Path < modules[j].Path })
	sort.Slice(db.vulns, func(i, j int) bool { return db.vulns[i].ID < db.vulns[j].ID })

	// db.json last: index/modules.json alone tells govulncheck this is a v1
	// database, and the rename in write makes the whole appear at once.
	for _, f := range []struct {
		name string
		v    any
	}{
		{"modules.json", modules},
		{"vulns.json", db.vulns},
		{"db.json", struct {
			Modified time.Time `json:"modified"`
		}{db.modified}},
	} {
		b, err := marshal(f.v)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "index", f.name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// marshal is json.Marshal without HTML escaping (the entries hold "<", ">"
// and "&" in prose), ending in a newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
