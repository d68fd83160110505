#!/usr/bin/env bash
# demo.sh walks ../shared/quickstart.md on a real single-node cluster: the
# real node up (kubelet, containerd, CoreDNS in a private network namespace),
# the image loaded, Connectors installed with `helm install`, then the quick
# start's steps with its manifests as written (the target cluster being the
# node's own API server: only its address and a token of it replaced) — the
# connector READY, the Job listing the pods through the in-cluster gateway,
# the mounted kubeconfig read with `kubectl exec` — and the node torn down.
# Run by `make demo` (root; `make demo-dev` needs none). IMAGE and IMAGE_TAG
# name the image of bin/connectors-image.tar (`make image`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
: "${IMAGE:?IMAGE is the image repository (make demo sets it)}" "${IMAGE_TAG:?IMAGE_TAG is the image tag (make demo sets it)}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [[ $(id -u) != 0 ]]; then
	echo "make demo starts a real node (kubelet, containerd, mounts, a network namespace) and needs root;" >&2
	echo "make demo-dev walks the same quick start on a local control plane without root." >&2
	exit 1
fi
[[ -f bin/connectors-image.tar ]] || { echo "bin/connectors-image.tar is missing: make image" >&2; exit 1; }
bins="$(hack/test-bins.sh)"
export GOTOOLCHAIN=local
go build -o bin/realnode ./hack/realnode
# The demo's node has its own state (a fresh cluster each run; the images
# built once are kept), so that it never touches the node of make realnode-up.
export REALNODE_DIR="${REALNODE_DIR:-/var/lib/connectors-demo}"
if pgrep -x kubelet >/dev/null || pgrep -x containerd >/dev/null; then
	echo "a kubelet or containerd runs on this machine already (make realnode-down stops the real node's): one node per machine" >&2
	exit 1
fi
bin/realnode purge
helm_home="$(mktemp -d "${TMPDIR:-/tmp}/connectors-demo-helm-XXXXXX")"
export HELM_CACHE_HOME="${helm_home}/cache" HELM_CONFIG_HOME="${helm_home}/config" HELM_DATA_HOME="${helm_home}/data"
cleanup() {
	step "teardown: the node down, the host as it was"
	bin/realnode purge || true
	rm -rf "${helm_home}"
}
trap cleanup EXIT
k() { bin/realnode kubectl "$@"; }

step "the real node up"
bin/realnode up
eval "$(bin/realnode env)"
bin/realnode kubectl get nodes -o wide

step "the image ${IMAGE}:${IMAGE_TAG} loaded into the node's containerd (no registry here)"
bin/realnode import bin/connectors-image.tar

step "helm install connectors chart/ -n connectors-system"
# The target of the quick start is this node's API server: its CA is trusted
# by a labelled Secret of the install namespace, as for any target.
k create namespace connectors-system
k create secret generic node-ca -n connectors-system --from-file=ca.crt="${REALNODE_CA_FILE}"
k label secret node-ca -n connectors-system connectors.cpaas.io/ca-cert=true
# No registry is reachable: the driver registers itself (the registrar image
# cannot be pulled) and the bundled Redis is the node's local Redis image.
bin/realnode exec "${bins}/helm" install connectors chart -n connectors-system \
	--set image.repository="${IMAGE}" --set image.tag="${IMAGE_TAG}" \
	--set csi.kubeletDir="${REALNODE_KUBELET_ROOT}" --set csi.registration=builtin \
	--set redis.bundled.image=realnode.local/redis:7.0 --wait --timeout 5m
k get pods -n connectors-system -o wide

step "1. Namespace"
k create ns k8s-connector-demo

step "2. Credential Secret and Connector (target: this node's API server, a ServiceAccount that may list pods)"
k create serviceaccount demo-reader -n k8s-connector-demo
k create clusterrole demo-pod-reader --verb=get,list,watch --resource=pods,namespaces
k create clusterrolebinding demo-pod-reader --clusterrole=demo-pod-reader --serviceaccount=k8s-connector-demo:demo-reader
token="$(k create token demo-reader -n k8s-connector-demo --duration=1h)"
address="https://${REALNODE_NODE_IP}:6443"
# The seed's manifests as written, only the token and the address replaced.
sed -e "s#eyJhbGciOiJSUzI1NiIxxxxxxxx#${token}#" -e "s#https://192.168.1.100:6443#${address}#" chart/testdata/quickstart-step2.yaml |
	k apply -n k8s-connector-demo -f -
k wait --for=condition=Ready connector/k8s-connector -n k8s-connector-demo --timeout=120s >/dev/null
k get connector k8s-connector -n k8s-connector-demo

step "3. A Job that uses the connector"
for _ in $(seq 1 60); do k get sa default -n k8s-connector-demo >/dev/null 2>&1 && break; sleep 0.5; done
k apply -n k8s-connector-demo -f test/e2e/testdata/quickstart-job.yaml
k wait --for=condition=Complete job/k8s-access -n k8s-connector-demo --timeout=180s >/dev/null

step "4. Result: kubectl logs job/k8s-access -n k8s-connector-demo"
k logs job/k8s-access -n k8s-connector-demo

step "the mounted kubeconfig, read with kubectl exec from inspect-k8s-access (its token shortened)"
k apply -n k8s-connector-demo -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: inspect-k8s-access
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: kubectl
    image: bitnami/kubectl:1.30.1
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    volumeMounts:
    - name: kubeconfig
      mountPath: /opt/kube
  volumes:
  - name: kubeconfig
    csi:
      readOnly: true
      driver: connectors-csi
      volumeAttributes:
        connector.name: "k8s-connector"
        configuration.names: "kubeconfig"
YAML
k wait --for=condition=Ready pod/inspect-k8s-access -n k8s-connector-demo --timeout=120s >/dev/null
k exec inspect-k8s-access -n k8s-connector-demo -- cat /opt/kube/kubeconfig |
	sed -E 's#(proxy-url: http://[^:]+:[^.]{12})[^@]*@#\1…@#'

step "the gateway pods audited the Job's requests"
audit="$(k logs -n connectors-system -l app.kubernetes.io/component=gateway --prefix --tail=-1)"
grep -m3 '"podName":"k8s-access-' <<<"${audit}"

step "done: the Job listed the pods through the in-cluster gateway without holding the Secret's token"
