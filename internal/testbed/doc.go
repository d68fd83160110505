// Package testbed starts the real parts that integration tests run against:
// a kube-apiserver + etcd control plane (controller-runtime envtest) with the
// project's CRDs installed, a real redis-server, and the real kubectl and
// helm binaries.
//
// The binaries are built from the Go module proxy by hack/test-bins.sh
// (`make test-bins`) into a cache outside the work tree and linked to
// bin/k8s/<version>; $CONNECTORS_TEST_BINS overrides the directory. A missing
// binary fails the test with a message naming the make target: tests never
// skip for lack of their real parts.
//
// Every helper takes a testing.TB and registers its cleanup with t.Cleanup.
package testbed
