#!/usr/bin/env bash
# tool-bins.sh installs the servers that the class tests run real clients
# against and that Debian does not ship (today: verdaccio, the npm
# registry), once, into a cache outside the work tree, and links it to
# bin/tools/<name>.
#
#   hack/tool-bins.sh            install if missing, then link; prints the path
#   CONNECTORS_TOOL_BINS_CACHE   cache root (default ~/.cache/connectors-tool-bins)
#
# The versions are pinned by hack/tools/<name>/package-lock.json (npm ci);
# the cache key covers it and the Node version. Cold: about 30 seconds
# (from the npm registry); warm: instant. A file lock keeps parallel callers
# from installing twice.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${CONNECTORS_TOOL_BINS_CACHE:-${HOME}/.cache/connectors-tool-bins}"
log() { echo "tool-bins: $*" >&2; }

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
