#!/usr/bin/env bash
# verify-generated.sh regenerates into a temporary copy of the tree and fails
# when the committed generated files differ (run `make generate`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
tar -C "${root}" --exclude=./bin --exclude=./.git -cf - . | tar -C "${tmp}" -xf -
"${root}/hack/generate.sh" "${tmp}"
if ! diff -ru "${root}/api" "${tmp}/api" || ! diff -ru "${root}/chart/crds" "${tmp}/chart/crds" ||
	! diff -ru "${root}/chart/rbac" "${tmp}/chart/rbac"; then
	echo "generated files are stale: run make generate" >&2
	exit 1
fi
