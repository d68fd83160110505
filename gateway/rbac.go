package gateway

// The gateway's RBAC, generated into chart/rbac/gateway-role.yaml (the
// ClusterRole connectors-gateway): it reads connectors and classes
// (informers), the Secrets that connectors name (single-object watches,
// cluster-wide since connectors live in every namespace) and the CA
// Secrets of the install namespace; it reviews pod tokens and asks whether
// a pod may use a connector of another namespace; it watches pod metadata
// to revoke the tokens of deleted pods. It writes nothing.
//
// +kubebuilder:rbac:groups=connectors.alauda.io,resources=connectors;connectorclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
