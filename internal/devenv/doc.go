// Package devenv is what `connectors dev` runs around the real components:
// a local control plane (etcd + kube-apiserver from the test-bed binaries,
// through controller-runtime's envtest) or an existing cluster, a local
// redis-server when one is installed, the objects a chart install would
// create (CRDs, the k8s ConnectorClass, the gateway CA Secret, the API
// server's CA as a trusted CA Secret), and `connectors dev exec`, which runs
// a command the way a kubelet runs a pod with a connectors-csi volume.
//
// The components themselves (reconciler, gateway, csi) run unchanged: dev
// only wires them with local addresses.
package devenv
