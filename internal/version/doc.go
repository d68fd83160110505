// Package version reports the version of the connectors binary: the value
// stamped at link time by the Makefile (-X .../internal/version.version=...),
// completed with what the Go toolchain recorded in the build info.
package version
