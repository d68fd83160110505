#!/usr/bin/env bash
# bench.sh runs `connectors loadtest` the way a user measures the gateway: a
# local control plane (`connectors dev`: controller, gateway, CSI driver in one
# process), the load test's upstream, a Connector to it, and the load test run
# as a workload whose only credential is the mounted kubeconfig. Every target
# (direct, gateway, nginx, squid) is measured interleaved. Run by `make bench`
# (writes the generated section of docs/benchmarks.md) and `make bench-quick`
# (QUICK=1: ≤ 60 s, prints the warm ratios last). RELAY=1 runs the gateway with
# --http2-relay (its own section of the document; SECTION=name picks another, e.g.
# for one scenario: SECTION=mixed hack/bench.sh --scenarios mixed). Root is not needed, but the
# peers' workers drop to nobody/proxy when it is.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
bins="$(hack/test-bins.sh)"
export PATH="${bins}:${PATH}:/usr/sbin"
state="$(mktemp -d "${TMPDIR:-/tmp}/connectors-bench-XXXXXX")"
chmod 755 "${state}"
kc() { kubectl --kubeconfig "${state}/dev/admin.kubeconfig" "$@"; }
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "${p}" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "${p}" 2>/dev/null || true; done
	rm -rf "${state}"
}
trap cleanup EXIT
wait_for() { # wait_for FILE-OR-PATTERN LOG PID
	for _ in $(seq 1 240); do
		grep -q "$1" "$2" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || { tail -20 "$2"; echo "bench: $(basename "$2" .log) exited" >&2; exit 1; }
		sleep 0.25
	done
	tail -20 "$2"
	echo "bench: $(basename "$2" .log) not ready after 60 s" >&2
	exit 1
}

dev_args=()
section=default
if [[ "${RELAY:-}" == 1 ]]; then
	dev_args+=(--http2-relay)
	section=http2-relay
fi
section="${SECTION:-${section}}" # e.g. SECTION=mixed with --scenarios mixed
CONNECTORS_PPROF_ADDR="${PPROF_ADDR:-}" bin/connectors dev --state-dir "${state}/dev" "${dev_args[@]}" >"${state}/dev.log" 2>&1 &
dev=$!
pids+=("${dev}")
bin/connectors loadtest upstream --dir "${state}/up" >"${state}/up.log" 2>&1 &
pids+=($!)
wait_for 'connectors dev: ready' "${state}/dev.log" "${dev}"
wait_for 'serving on' "${state}/up.log" "${pids[1]}"

kc create namespace loadtest >/dev/null
kc -n loadtest create secret generic upstream-token --type=connectors.cpaas.io/bearer-token \
	--from-file=token="${state}/up/token" >/dev/null
kc -n loadtest create secret generic upstream-ca --from-file=ca.crt="${state}/up/ca.crt" >/dev/null
kc -n loadtest apply -f - >/dev/null <<YAML
apiVersion: connectors.alauda.io/v1alpha1
kind: Connector
metadata:
  name: upstream
spec:
  connectorClassName: k8s
  address: https://$(cat "${state}/up/addr")
  caCertSecretRef:
    name: upstream-ca
  auth:
    name: bearerTokenAuth
    secretRef:
      name: upstream-token
YAML
kc -n loadtest wait --for=condition=Ready connector/upstream --timeout=120s >/dev/null

args=(--upstream-dir "${state}/up" --gateway-pid "${dev}" --peer-dir "${state}/peers" --install-peers
	--admin-kubeconfig "${state}/dev/admin.kubeconfig")
if [[ "${QUICK:-}" == 1 ]]; then
	args+=(--quick --rounds 2 --duration 2s)
else
	args+=(--rounds "${ROUNDS:-3}" --duration "${DURATION:-5s}" --json "${state}/bench.json" --markdown "${state}/bench.md")
fi
bin/connectors dev exec --state-dir "${state}/dev" -n loadtest --connector upstream -- \
	bin/connectors loadtest run "${args[@]}" "$@" | tee "${state}/out.txt"

if [[ "${QUICK:-}" != 1 && -n "${BENCH_DOC:-}" ]]; then
	# Replace the generated section of the document.
	{
		echo "<!-- make bench: generated from here (${section}) -->"
		echo
		if [[ "${section}" == http2-relay ]]; then echo "The gateway with \`--http2-relay\`. "; fi
		echo "Run of $(date -u +%F) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(go version | cut -d' ' -f3),"
		echo "$(nginx -v 2>&1 | cut -d: -f2 | xargs), $(squid -v | head -1 | sed 's/ for .*//'), $(bin/connectors version 2>/dev/null | head -1):"
		echo
		echo "    $(if [[ "${section}" == http2-relay ]]; then echo "RELAY=1 "; fi)make bench   # hack/bench.sh; ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5s}"
		echo
		cat "${state}/bench.md"
		echo "<!-- make bench: generated to here (${section}) -->"
	} >"${state}/section.md"
	python3 - "${BENCH_DOC}" "${state}/section.md" "${section}" <<'PY'
import sys
doc, section, name = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
s = open(doc).read()
a, b = "<!-- make bench: generated from here (%s) -->" % name, "<!-- make bench: generated to here (%s) -->" % name
if a in s and b in s:
    s = s[:s.index(a)] + section.rstrip("\n") + s[s.index(b) + len(b):]
else:
    s = s.rstrip("\n") + "\n\n" + section
open(doc, "w").write(s)
PY
	echo "bench: wrote ${BENCH_DOC}"
fi
