#!/usr/bin/env bash
# demo-dev.sh walks ../shared/quickstart.md on a local control plane with the real
# kubectl: `connectors dev` in the background, the quick start's Secret and
# Connector (the target cluster being the local apiserver itself), READY,
# then a workload whose only credential is the mounted kubeconfig lists the
# pods through the gateway. Run by `make demo-dev` (no root needed; `make
# demo` walks it on a real node).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
bins="$(hack/test-bins.sh)"
export PATH="${bins}:${PATH}"
state="$(mktemp -d "${TMPDIR:-/tmp}/connectors-demo-XXXXXX")"
log="${state}.log"
kc() { kubectl --kubeconfig "${state}/admin.kubeconfig" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "connectors dev (log: ${log})"
bin/connectors dev --state-dir "${state}" >"${log}" 2>&1 &
dev=$!
cleanup() {
	kill -INT "${dev}" 2>/dev/null || true
	wait "${dev}" 2>/dev/null || true
	rm -rf "${state}"
}
trap cleanup EXIT
for _ in $(seq 1 240); do
	grep -q 'connectors dev: ready' "${log}" 2>/dev/null && break
	kill -0 "${dev}" 2>/dev/null || { cat "${log}"; echo "connectors dev exited" >&2; exit 1; }
	sleep 0.5
done
grep 'connectors dev: ready' "${log}"

step "1. Namespace"
kc create ns k8s-connector-demo

step "2. Credential Secret and Connector (target: the local apiserver, a ServiceAccount that may list pods)"
kc create serviceaccount demo-reader -n k8s-connector-demo
kc create clusterrole demo-pod-reader --verb=get,list,watch --resource=pods,namespaces
kc create clusterrolebinding demo-pod-reader --clusterrole=demo-pod-reader --serviceaccount=k8s-connector-demo:demo-reader
token="$(kc create token demo-reader -n k8s-connector-demo --duration=1h)"
address="$(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
# The seed's manifests as written, only the token and the address replaced.
sed -e "s#eyJhbGciOiJSUzI1NiIxxxxxxxx#${token}#" -e "s#https://192.168.1.100:6443#${address}#" chart/testdata/quickstart-step2.yaml |
	kc apply -n k8s-connector-demo -f -
kc wait --for=condition=Ready connector/k8s-connector -n k8s-connector-demo --timeout=120s >/dev/null
kc get connector k8s-connector -n k8s-connector-demo

step "3. The mounted kubeconfig (its token shortened)"
bin/connectors dev exec --state-dir "${state}" -n k8s-connector-demo --connector k8s-connector -- \
	sh -c 'sed -E "s#(proxy-url: http://[^:]+:[^.]{12})[^@]*@#\1…@#" "$KUBECONFIG"'

step "4. kubectl get pods -v=5 --all-namespaces, with only that kubeconfig"
bin/connectors dev exec --state-dir "${state}" -n k8s-connector-demo --connector k8s-connector -- \
	kubectl get pods -v=5 --all-namespaces

step "done: the workload listed the pods through the gateway without holding the Secret's token"
