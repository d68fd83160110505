package csi

// The driver's RBAC, generated into chart/rbac/csi-role.yaml (the
// ClusterRole connectors-csi): it reads the connectors a volume names and
// their class, and asks whether the pod may use a connector of another
// namespace. It does not get serviceaccounts/token: the kubelet hands it
// the pod's token (the CSIDriver's tokenRequests), and a right to mint
// tokens for every ServiceAccount on every node would be a cluster
// takeover waiting for one compromised node. Without a kubelet token the
// mount fails with a clear error instead (Options.Minter).
//
// +kubebuilder:rbac:groups=connectors.alauda.io,resources=connectors;connectorclasses,verbs=get
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
