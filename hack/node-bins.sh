#!/usr/bin/env bash
# node-bins.sh builds the real node's binaries (the test bed's kubelet and
# friends) from the Go module proxy, once, into a cache outside the work tree,
# and links the cache directory to bin/node/<kube version>.
#
#   hack/node-bins.sh              build if missing, then link; prints the path
#   CONNECTORS_NODE_BINS_CACHE     cache root (default ~/.cache/connectors-node-bins)
#   CONNECTORS_CONTAINERD=2        also build containerd v2 and runc from the
#                                  module proxy (into containerd2/); the default
#                                  node uses Debian's containerd 1.6 and runc
#
# Built: kubelet, kube-controller-manager, kube-scheduler, kube-proxy and a
# static kubectl v1.37.2 (hack/tools/kube, the test bed's ldflags), a static
# kubectl v1.30.1 for the bitnami/kubectl:1.30.1 image (hack/tools/kubectl130),
# crictl, CoreDNS, and the pause binary (kubernetes' pause.c, gcc -static). The
# cache key covers the versions, the Go version and the pinned modules. A file
# lock keeps parallel callers from building twice. Cold (warm Go module cache):
# about 10 minutes on 2 cores; warm: instant.
set -euo pipefail

KUBE_VERSION=v1.37.2
KUBECTL_IMAGE_VERSION=v1.30.1
CRICTL_VERSION=v1.37.0
COREDNS_VERSION=v1.15.0
CONTAINERD2_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
# Bump when the build steps below change in a way that changes the binaries.
RECIPE=1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${CONNECTORS_NODE_BINS_CACHE:-${HOME}/.cache/connectors-node-bins}"
containerd2="${CONNECTORS_CONTAINERD:-1}"
export GOTOOLCHAIN=local

log() { echo "node-bins: $*" >&2; }

for tool in gcc strip flock sha256sum; do
	command -v "${tool}" >/dev/null || { log "${tool} is missing (apt-get install -y gcc binutils util-linux coreutils)"; exit 1; }
done
[[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || { log "libc.a is missing for the static pause binary (apt-get install -y libc6-dev)"; exit 1; }

key="$( {
	echo "kube=${KUBE_VERSION} kubectl-image=${KUBECTL_IMAGE_VERSION} crictl=${CRICTL_VERSION} coredns=${COREDNS_VERSION} recipe=${RECIPE}"
	[[ "${containerd2}" == 2 ]] && echo "containerd=${CONTAINERD2_VERSION} runc=${RUNC_VERSION}"
	go env GOVERSION GOOS GOARCH
	cat "${root}/hack/tools/kube/go.mod" "${root}/hack/tools/kube/go.sum" \
		"${root}/hack/tools/kubectl130/go.mod" "${root}/hack/tools/kubectl130/go.sum" "${root}/hack/tools/kubectl130/main.go"
} | sha256sum | cut -c1-16)"
dir="${cache_root}/${KUBE_VERSION}-${key}"
link="${root}/bin/node/${KUBE_VERSION}"

# ldflags VERSION: what /version and `kubectl version` report.
ldflags() {
	local v="$1" major minor pkg out=""
	major="$(echo "${v#v}" | cut -d. -f1)"
	minor="$(echo "${v#v}" | cut -d. -f2)"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		out+=" -X ${pkg}.gitVersion=${v} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
	done
	echo "${out}"
}

build_node() {
	log "building kubelet, kube-controller-manager, kube-scheduler, kube-proxy ${KUBE_VERSION} (about 4 minutes with a warm build cache)"
	(cd "${root}/hack/tools/kube" && go build -ldflags "$(ldflags "${KUBE_VERSION}")" -o "$1/" \
		k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy)
	log "building a static kubectl ${KUBE_VERSION} (about 3 minutes)"
	mkdir -p "$1/static"
	(cd "${root}/hack/tools/kube" && CGO_ENABLED=0 go build -ldflags "$(ldflags "${KUBE_VERSION}")" -o "$1/static/kubectl" k8s.io/kubernetes/cmd/kubectl)
	log "building a static kubectl ${KUBECTL_IMAGE_VERSION} for the bitnami/kubectl image"
	(cd "${root}/hack/tools/kubectl130" && CGO_ENABLED=0 go build -ldflags "$(ldflags "${KUBECTL_IMAGE_VERSION}")" -o "$1/static/kubectl-${KUBECTL_IMAGE_VERSION}" .)
}

build_tools() {
	log "building crictl ${CRICTL_VERSION} and CoreDNS ${COREDNS_VERSION}"
	GOBIN="$1" go install "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"
	GOBIN="$1" CGO_ENABLED=0 go install "github.com/coredns/coredns@${COREDNS_VERSION}"
	log "building the pause binary (kubernetes' build/pause/linux/pause.c, static)"
	local src
	src="$(cd "${root}/hack/tools/kube" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
	gcc -Os -static -DVERSION="${KUBE_VERSION}-connectors" -o "$1/pause" "${src}"
	strip "$1/pause"
}

build_containerd2() {
	log "building containerd ${CONTAINERD2_VERSION} and runc ${RUNC_VERSION} (CONNECTORS_CONTAINERD=2)"
	command -v pkg-config >/dev/null && pkg-config --exists libseccomp ||
		{ log "runc needs libseccomp-dev and pkg-config (apt-get install -y libseccomp-dev pkg-config)"; exit 1; }
	mkdir -p "$1/containerd2"
	GOBIN="$1/containerd2" go install -tags no_btrfs,no_devmapper,no_zfs \
		"github.com/containerd/containerd/v2/cmd/containerd@${CONTAINERD2_VERSION}" \
		"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@${CONTAINERD2_VERSION}" \
		"github.com/containerd/containerd/v2/cmd/ctr@${CONTAINERD2_VERSION}"
	GOBIN="$1/containerd2" go install -tags seccomp "github.com/opencontainers/runc@${RUNC_VERSION}"
}

build_all() {
	local tmp
	tmp="$(mktemp -d "${cache_root}/.build-XXXXXX")"
	trap 'rm -rf "${tmp}"' RETURN
	build_node "${tmp}"
	build_tools "${tmp}"
	[[ "${containerd2}" == 2 ]] && build_containerd2 "${tmp}"
	"${tmp}/kubelet" --version >&2
	"${tmp}/static/kubectl-${KUBECTL_IMAGE_VERSION}" version --client >&2 2>/dev/null | head -1 >&2 || true
	chmod 0755 "${tmp}"
	mv "${tmp}" "${dir}"
}

prune() {
	find "${cache_root}" -mindepth 1 -maxdepth 1 -type d -name "v*-*" ! -path "${dir}" -mtime +14 -print \
		-exec rm -rf {} + | while read -r old; do log "pruned ${old} (unused for 14 days)"; done
	find "${cache_root}" -mindepth 1 -maxdepth 1 -type d -name ".build-*" -mtime +1 -exec rm -rf {} +
}

mkdir -p "${cache_root}"
exec 9>"${cache_root}/.lock"
if [[ ! -x "${dir}/pause" ]]; then
	flock -n 9 || { log "waiting for another build (lock ${cache_root}/.lock)"; flock 9; }
	if [[ ! -x "${dir}/pause" ]]; then
		start=$(date +%s)
		build_all
		log "built in $(($(date +%s) - start))s into ${dir}"
		prune
	fi
	flock -u 9
fi

touch "${dir}" # in use: not pruned
mkdir -p "$(dirname "${link}")"
ln -sfn "${dir}" "${link}"
echo "${link}"
