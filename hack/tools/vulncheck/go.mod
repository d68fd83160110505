// Module vulncheck pins govulncheck (golang.org/x/vuln) for `make vulncheck`
// and holds the program that builds its offline vulnerability database
// (./vulndb). It is separate from the product module and from hack/tools so
// that neither this tool's dependencies nor golangci-lint's move the other's.
// The vulnerability database's version is pinned in the Makefile
// (VULNDB_VERSION).
module github.com/connectors-io/connectors/hack/tools/vulncheck

go 1.26.0

tool golang.org/x/vuln/cmd/govulncheck

require golang.org/x/mod v0.42.0

require (
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/telemetry v0.0.0-20261010193011-f71dc92da45e // indirect
	golang.org/x/tools v0.52.0 // indirect
	golang.org/x/vuln v1.9.0 // indirect
)
