package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Connector names a target system (its address) and the Secret holding the
// credential for it. Workloads use a connector through the gateway or through
// configurations mounted by the CSI driver, never holding the credential.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=alauda,shortName=ctr
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.spec.connectorClassName`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Connector struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired connection: class, address and credential.
	Spec ConnectorSpec `json:"spec"`
	// Status is what the reconciler observed about the connector.
	// +optional
	Status ConnectorStatus `json:"status,omitempty"`
}

// ConnectorSpec is the desired state of a Connector.
//
// The class name is required by a rule rather than by the schema so that a
// manifest with several mistakes gets all of them reported at once (the API
// server skips rules when the schema already failed).
//
// +kubebuilder:validation:XValidation:rule="has(self.connectorClassName) && size(self.connectorClassName) > 0",message="connectorClassName is required: name the ConnectorClass of the target, for example k8s",fieldPath=".connectorClassName",reason="FieldValueRequired"
type ConnectorSpec struct {
	// ConnectorClassName names the cluster-scoped ConnectorClass that says how
	// this kind of target is probed, proxied and configured (for example
	// "k8s"). Required.
	// +optional
	ConnectorClassName string `json:"connectorClassName"`

	// Address is the target's base URL, for example https://192.168.1.100:6443.
	// It must be an absolute http or https URL and may carry a path prefix.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="address must be an absolute http or https URL, for example https://192.168.1.100:6443"
	Address string `json:"address"`

	// AddressExtensions are further URLs of the same target (for example a
	// registry's token endpoint). The gateway also accepts them as tunnel
	// targets and injects the credential there.
	// +optional
	// +listType=map
	// +listMapKey=name
	AddressExtensions []AddressExtension `json:"addressExtensions,omitempty"`

	// Auth selects one of the class's authentication types and the Secret
	// that holds its credential.
	// +optional
	Auth ConnectorAuth `json:"auth,omitempty"`

	// Params are values for the parameters that the class declares in
	// spec.params; a parameter with a default may be omitted.
	// +optional
	Params []Param `json:"params,omitempty"`

	// CACertSecretRef names a Secret in the connector's namespace whose PEM CA
	// bundle is trusted, in addition to the system roots, when talking TLS to
	// the target.
	// +optional
	CACertSecretRef *LocalSecretReference `json:"caCertSecretRef,omitempty"`
}

// AddressExtension is a further named URL of a connector's target.
type AddressExtension struct {
	// Name identifies the extension within the connector.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value is the URL.
	Value string `json:"value"`
}

// ConnectorAuth is the authentication a connector uses.
type ConnectorAuth struct {
	// Name is the name of one of the class's spec.auth.types, for example
	// "bearerTokenAuth".
	// +optional
	Name string `json:"name,omitempty"`
	// SecretRef points at the Secret with the credential. It may be omitted
	// when the class marks the authentication type as optional.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
	// Params are the values the class's auth probe needs (for example the
	// repository to check access to).
	// +optional
	Params []Param `json:"params,omitempty"`
}

// SecretReference points at a Secret, with the fields of a
// corev1.ObjectReference as the original accepts them; only Name and
// Namespace are used. The namespace defaults to the connector's own and,
// when set, must equal it.
// +structType=atomic
type SecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the Secret; defaults to the connector's namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Kind of the referent (Secret); accepted and not used.
	// +optional
	Kind string `json:"kind,omitempty"`
	// APIVersion of the referent (v1); accepted and not used.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// UID of the referent; accepted and not used.
	// +optional
	UID types.UID `json:"uid,omitempty"`
	// ResourceVersion of the referent; accepted and not used.
	// +optional
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// FieldPath within the referent; accepted and not used.
	// +optional
	FieldPath string `json:"fieldPath,omitempty"`
}

// LocalSecretReference points at a Secret in the referrer's namespace.
type LocalSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// ConnectorStatus is the observed state of a Connector.
type ConnectorStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Annotations are status annotations (Knative duck status).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Conditions are ConnectorClassReady, SecretReady, LivenessReady,
	// AuthReady, ProxyServiceReady and their aggregate Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []Condition `json:"conditions,omitempty"`
	// Proxy is the address clients use to reach the target through the
	// gateway, set once ProxyServiceReady is True.
	// +optional
	Proxy *ProxyStatus `json:"proxy,omitempty"`
	// API is where the class's API serves this connector.
	// +optional
	API *ConnectorAPIStatus `json:"api,omitempty"`
}

// ConnectorAPIStatus locates a connector's API.
type ConnectorAPIStatus struct {
	// Path of the connector's API, relative to the cluster's ingress, for
	// example /connectors/v1alpha1/<namespace>/<name>/path.
	// +optional
	Path string `json:"path,omitempty"`
}

// ProxyStatus holds the proxy addresses of a connector or class.
type ProxyStatus struct {
	// HTTPAddress is the plain-HTTP proxy endpoint.
	// +optional
	HTTPAddress *Addressable `json:"httpAddress,omitempty"`
}

// Addressable is a resolved address, as Knative's duckv1.Addressable.
type Addressable struct {
	// Name of the address.
	// +optional
	Name *string `json:"name,omitempty"`
	// URL is the address, for example
	// http://c-k8s-connector.k8s-connector-demo.svc.cluster.local.
	// +optional
	URL string `json:"url,omitempty"`
	// CACerts is the PEM bundle that signs the certificates served at URL, if
	// any.
	// +optional
	CACerts *string `json:"CACerts,omitempty"`
	// Audience is the OIDC audience of the address.
	// +optional
	Audience *string `json:"audience,omitempty"`
}

// ConnectorList is a list of Connectors.
//
// +kubebuilder:object:root=true
type ConnectorList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the connectors.
	Items []Connector `json:"items"`
}
