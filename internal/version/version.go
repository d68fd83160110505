package version

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at link time by the Makefile; empty in `go run` and tests.
var version string

// Info describes a build.
type Info struct {
	// Version is the release or `git describe` of the build, or "devel".
	Version string `json:"version"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns the build's version information.
func Get() Info {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return Info{Version: v, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// String renders the information on one line.
func (i Info) String() string {
	return fmt.Sprintf("connectors %s (%s, %s)", i.Version, i.GoVersion, i.Platform)
}

// Write prints the information to w: on one line for format "", as JSON
// for "json".
func (i Info) Write(w io.Writer, format string) error {
	switch format {
	case "":
		_, err := fmt.Fprintln(w, i)
		return err
	case "json":
		return json.NewEncoder(w).Encode(i)
	default:
		return fmt.Errorf("unknown output format %q: use json or leave it empty", format)
	}
}
