// Package localcluster starts the real parts of a local cluster on this
// machine, for `connectors dev` (package devenv) and the tests (package
// testbed): etcd + kube-apiserver from the test-bed binaries through
// controller-runtime's envtest, and a redis-server on a free loopback port.
// It knows where the binaries are (FindBins) and how the API server must be
// started for the project (its OIDC discovery document must advertise a
// reachable JWKS URL); callers add their own flags and CRDs.
package localcluster
