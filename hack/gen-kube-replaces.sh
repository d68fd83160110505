#!/usr/bin/env bash
# gen-kube-replaces.sh VERSION pins hack/tools/kube to k8s.io/kubernetes
# VERSION (e.g. v1.37.2): kubernetes' go.mod replaces its staging modules with
# ./staging/..., which a dependent module cannot use, so each of them is
# replaced here with the published k8s.io/X v0.MINOR.PATCH instead. The list
# comes from that go.mod, never by hand.
set -euo pipefail
version="${1:?usage: hack/gen-kube-replaces.sh v1.MINOR.PATCH}"
staging="v0.${version#v1.}"
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/tools/kube" && pwd)"
export GOTOOLCHAIN=local
gomod="$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
cd "${dir}"
# Drop the old replace block, then write the new one.
sed -i '/^replace (/,/^)/d' go.mod
{
	echo "replace ("
	grep -E '=> \./staging/' "${gomod}" | awk -v v="${staging}" '{print "\t" $1 " => " $1 " " v}'
	echo ")"
} >>go.mod
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@${version}" "k8s.io/kubernetes/cmd/kubectl@${version}"
go mod tidy
echo "pinned k8s.io/kubernetes ${version} with $(grep -c '=> k8s.io/' go.mod) staging replaces" >&2
