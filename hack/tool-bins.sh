#!/usr/bin/env bash
# tool-bins.sh installs the servers and clients of the class tests that
# Debian does not ship, once, into a cache outside the work tree, and links
# each to bin/tools/<name>: verdaccio (the npm registry, from the npm
# registry), the CNCF distribution registry and crane (both built from the
# Go module proxy).
#
#   hack/tool-bins.sh            install if missing, then link; prints the path
#   CONNECTORS_TOOL_BINS_CACHE   cache root (default ~/.cache/connectors-tool-bins)
#
# verdaccio's versions are pinned by hack/tools/verdaccio/package-lock.json
# (npm ci), the Go tools' below; the cache keys cover them and the Node or
# Go version. Cold: about 30 seconds for verdaccio, 2 minutes for the
# registry and crane with a warm Go module cache (4 cold); warm: instant. A
# file lock keeps parallel callers from installing twice.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${CONNECTORS_TOOL_BINS_CACHE:-${HOME}/.cache/connectors-tool-bins}"
log() { echo "tool-bins: $*" >&2; }

REGISTRY_VERSION=v3.1.2 # github.com/distribution/distribution/v3
CRANE_VERSION=v0.22.1   # github.com/google/go-containerregistry, as in go.mod
export GOTOOLCHAIN=local

command -v npm >/dev/null 2>&1 || { log "npm is missing: install the Debian packages nodejs and npm (.ci/run does)"; exit 1; }

name=verdaccio
src="${root}/hack/tools/${name}"
key="$( { node --version; cat "${src}/package.json" "${src}/package-lock.json"; } | sha256sum | cut -c1-16)"
dir="${cache_root}/${name}-${key}"
link="${root}/bin/tools/${name}"

mkdir -p "${cache_root}"
exec 9>"${cache_root}/.lock"
flock 9
if [[ ! -x "${dir}/node_modules/.bin/${name}" ]]; then
	log "installing ${name} (npm ci, hack/tools/${name}/package-lock.json)"
	tmp="$(mktemp -d "${cache_root}/.tmp-${name}-XXXXXX")"
	trap 'rm -rf "${tmp}"' EXIT
	cp "${src}/package.json" "${src}/package-lock.json" "${tmp}/"
	(cd "${tmp}" && npm ci --no-audit --no-fund --loglevel=error >&2)
	rm -rf "${dir}"
	mv "${tmp}" "${dir}"
	trap - EXIT
fi
touch "${dir}"
mkdir -p "$(dirname "${link}")"
ln -sfn "${dir}" "${link}"
echo "${link}"

# go_tool <name> <package@version>: go install into the cache, link the
# directory to bin/tools/<name>.
go_tool() {
	local name="$1" pkg="$2" key dir link tmp
	key="$( { echo "${pkg}"; go env GOVERSION GOOS GOARCH; } | sha256sum | cut -c1-16)"
	dir="${cache_root}/${name}-${key}"
	link="${root}/bin/tools/${name}"
	if [[ ! -x "${dir}/${name}" ]]; then
		log "building ${name} (${pkg})"
		tmp="$(mktemp -d "${cache_root}/.tmp-${name}-XXXXXX")"
		GOBIN="${tmp}" GOFLAGS=-mod=mod go install "${pkg}" >&2
		rm -rf "${dir}"
		mv "${tmp}" "${dir}"
	fi
	touch "${dir}"
	ln -sfn "${dir}" "${link}"
	echo "${link}"
}
go_tool registry "github.com/distribution/distribution/v3/cmd/registry@${REGISTRY_VERSION}"
go_tool crane "github.com/google/go-containerregistry/cmd/crane@${CRANE_VERSION}"
