// Package e2e runs ../shared/quickstart.md as a user would: `connectors dev`
// as a process, the real kubectl against its admin kubeconfig, and
// `connectors dev exec` as the workload whose only credential is the mounted
// kubeconfig. It asserts every observable of the quick start.
//
// The binary comes from $CONNECTORS_BIN (`make test` builds it) or is built
// into a temporary directory.
package e2e
