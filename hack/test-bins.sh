#!/usr/bin/env bash
# test-bins.sh builds the test bed's real binaries (etcd, kube-apiserver,
# kubectl, helm) from the Go module proxy, once, into a cache outside the work
# tree, and links the cache directory to bin/k8s/<kube version>.
#
#   hack/test-bins.sh            build if missing, then link; prints the path
#   CONNECTORS_TEST_BINS_CACHE   cache root (default ~/.cache/connectors-test-bins)
#
# The cache key covers the versions, the Go version and the pinned tools
# modules, so a bump rebuilds and an unchanged tree never does. A file lock
# keeps parallel callers from building twice. Cold build: about 9 minutes on
# 2 cores and 2.5 GB of memory; warm: instant. Each use touches its entry;
# after a build, entries unused for 14 days (about 400 MB each) and
# leftovers of interrupted builds are removed.
set -euo pipefail

ETCD_VERSION=v3.7.3
KUBE_VERSION=v1.37.2
HELM_VERSION=v3.22.0
# Bump when the build steps below change in a way that changes the binaries.
RECIPE=1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${CONNECTORS_TEST_BINS_CACHE:-${HOME}/.cache/connectors-test-bins}"
export GOTOOLCHAIN=local

log() { echo "test-bins: $*" >&2; }

key="$( {
	echo "etcd=${ETCD_VERSION} kube=${KUBE_VERSION} helm=${HELM_VERSION} recipe=${RECIPE}"
	go env GOVERSION GOOS GOARCH
	cat "${root}/hack/tools/etcd/go.mod" "${root}/hack/tools/etcd/go.sum" \
		"${root}/hack/tools/kube/go.mod" "${root}/hack/tools/kube/go.sum"
} | sha256sum | cut -c1-16)"
dir="${cache_root}/${KUBE_VERSION}-${key}"
link="${root}/bin/k8s/${KUBE_VERSION}"

build_etcd() {
	log "building etcd ${ETCD_VERSION} (go.etcd.io/etcd/server/v3)"
	(cd "${root}/hack/tools/etcd" && go build -o "$1/etcd" go.etcd.io/etcd/server/v3)
}

build_kube() {
	local major minor pkg ldflags=""
	major="$(echo "${KUBE_VERSION#v}" | cut -d. -f1)"
	minor="$(echo "${KUBE_VERSION#v}" | cut -d. -f2)"
	# Without these /version reports v0.0.0-master and clients warn about skew.
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
		ldflags+=" -X ${pkg}.gitTreeState=clean"
	done
	log "building kube-apiserver and kubectl ${KUBE_VERSION} (the slow part: about 8 minutes cold)"
	(cd "${root}/hack/tools/kube" && go build -ldflags "${ldflags}" -o "$1/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
}

build_helm() {
	log "building helm ${HELM_VERSION}"
	GOBIN="$1" go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
}

build_all() {
	local tmp
	tmp="$(mktemp -d "${cache_root}/.build-XXXXXX")"
	trap 'rm -rf "${tmp}"' RETURN
	build_etcd "${tmp}"
	build_kube "${tmp}"
	build_helm "${tmp}"
	"${tmp}/kube-apiserver" --version >&2
	"${tmp}/etcd" --version >&2
	chmod 0755 "${tmp}"
	mv "${tmp}" "${dir}"
}

# prune removes the entries of other keys unused for 14 days, and build
# directories that an interrupted build left behind a day ago or more.
prune() {
	find "${cache_root}" -mindepth 1 -maxdepth 1 -type d -name "v*-*" ! -path "${dir}" -mtime +14 -print \
		-exec rm -rf {} + | while read -r old; do log "pruned ${old} (unused for 14 days)"; done
	find "${cache_root}" -mindepth 1 -maxdepth 1 -type d -name ".build-*" -mtime +1 -exec rm -rf {} +
}

mkdir -p "${cache_root}"
exec 9>"${cache_root}/.lock"
if [[ ! -x "${dir}/helm" ]]; then
	flock -n 9 || { log "waiting for another build (lock ${cache_root}/.lock)"; flock 9; }
	if [[ ! -x "${dir}/helm" ]]; then
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
