#!/usr/bin/env bash
# realnode.sh: the test bed's real single-node cluster (internal/realnode):
# kubelet, containerd, CNI and cluster DNS in a private network namespace.
#
#   hack/realnode.sh up|down|purge|status|env|images
#   hack/realnode.sh import IMAGE.tar  load an image tarball (make image) into the node
#   hack/realnode.sh kubectl ARGS...   kubectl inside the node's namespace, as admin
#   hack/realnode.sh exec CMD...       any command inside the namespace (KUBECONFIG set)
#
# Needs root and the Debian packages containerd runc containernetworking-plugins
# busybox-static iptables (.ci/run installs them), and the binaries of
# `make test-bins` and `make node-bins`. State: $REALNODE_DIR (default
# /var/lib/connectors-realnode). One node per machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
export GOTOOLCHAIN=local
go build -o bin/realnode ./hack/realnode
exec bin/realnode "$@"
