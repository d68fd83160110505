#!/usr/bin/env bash
# generate.sh ROOT regenerates the deepcopy code of api/ and the CRDs in
# chart/crds/ of the tree at ROOT with the pinned controller-gen.
set -euo pipefail
cd "$1"
: "${CONTROLLER_GEN:?set CONTROLLER_GEN to the pinned controller-gen (make generate does)}"
"${CONTROLLER_GEN}" object paths=./api/...
rm -f chart/crds/*.yaml
"${CONTROLLER_GEN}" crd paths=./api/... output:crd:artifacts:config=chart/crds
# The ClusterRole of the controller and the control API, from the
# +kubebuilder:rbac markers of the packages they run.
mkdir -p chart/rbac
"${CONTROLLER_GEN}" rbac:roleName=connectors-controller paths=./reconciler/... paths=./tokens/... paths=./control/... output:rbac:artifacts:config=chart/rbac
# The ClusterRoles of the gateway and of the CSI driver, from the markers of
# gateway/rbac.go and csi/rbac.go.
"${CONTROLLER_GEN}" rbac:roleName=connectors-gateway paths=./gateway/... output:rbac:stdout >chart/rbac/gateway-role.yaml
"${CONTROLLER_GEN}" rbac:roleName=connectors-csi paths=./csi/... output:rbac:stdout >chart/rbac/csi-role.yaml
