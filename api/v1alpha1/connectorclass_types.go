package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Well-known Secret types that need no declared params.
const (
	// SecretTypeBearerToken holds a bearer token under the key "token".
	SecretTypeBearerToken corev1.SecretType = "connectors.cpaas.io/bearer-token"
	// SecretTypeBasicAuth is kubernetes.io/basic-auth (keys "username", "password").
	SecretTypeBasicAuth = corev1.SecretTypeBasicAuth
	// BearerTokenKey is the data key of a bearer-token Secret.
	BearerTokenKey = "token"
	// SecretTypeGitLabPAT holds a GitLab personal access token under the
	// key "token", injected as Private-Token.
	SecretTypeGitLabPAT corev1.SecretType = "connectors.cpaas.io/gitlab-pat-auth"
	// GitLabPATKey is the data key of a gitlab-pat-auth Secret.
	GitLabPATKey = "token"
	// SecretTypeDistributionRegistryToken holds a registry user name and
	// password (keys "username", "password"): the gateway asks the
	// registry's token service for a bearer token with them (the token flow
	// of the distribution spec), or sends them as Basic to a registry that
	// takes Basic.
	SecretTypeDistributionRegistryToken corev1.SecretType = "cpaas.io/distribution-registry-token"
)

// ConnectorClass describes a kind of target: the shape of its address, the
// authentication types it accepts, how to probe it, the proxy that serves
// its connectors and the configuration files workloads can mount.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=alauda
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ConnectorClass struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the kind of target.
	Spec ConnectorClassSpec `json:"spec"`
	// Status is what the reconciler observed about the class.
	// +optional
	Status ConnectorClassStatus `json:"status,omitempty"`
}

// ConnectorClassSpec is the desired state of a ConnectorClass.
type ConnectorClassSpec struct {
	// Address describes the connectors' spec.address.
	// +optional
	Address ClassAddress `json:"address,omitempty"`
	// AddressExtensions declares further addresses connectors give in
	// spec.addressExtensions (for example github's "api"); one without a
	// default is required.
	// +optional
	AddressExtensions []ParamSpec `json:"addressExtensions,omitempty"`
	// Params declares the parameters connectors of this class may or must
	// give in spec.params.
	// +optional
	Params []ParamSpec `json:"params,omitempty"`
	// Auth lists the authentication types connectors may choose from.
	// +optional
	Auth ClassAuth `json:"auth,omitempty"`
	// LivenessProbe checks that a connector's target is reachable.
	// +optional
	LivenessProbe *Probe `json:"livenessProbe,omitempty"`
	// AuthProbes check, per authentication type, that the target accepts the
	// connector's credential.
	// +optional
	AuthProbes []AuthProbe `json:"authProbes,omitempty"`
	// API is the optional REST API service of the class.
	// +optional
	API *ClassAPI `json:"api,omitempty"`
	// Proxy is the proxy that serves the connectors of this class (for the
	// k8s class: the shared gateway). Without it connectors get no proxy
	// address (ProxyServiceReady reason NonProxy).
	// +optional
	Proxy *ClassProxy `json:"proxy,omitempty"`
	// Configurations are named sets of templated files the CSI driver renders
	// into workloads (for the k8s class: "kubeconfig").
	// +optional
	// +listType=map
	// +listMapKey=name
	Configurations []Configuration `json:"configurations,omitempty"`
}

// ClassAddress describes a class's address: a ParamSpec whose name may be
// omitted (the original's schema requires it, its examples leave it out).
type ClassAddress struct {
	// Name of the address field, usually "address".
	// +optional
	Name string `json:"name,omitempty"`
	// Type of the address; "string" is supported.
	// +optional
	Type string `json:"type,omitempty"`
	// Description tells users what the address is.
	// +optional
	Description string `json:"description,omitempty"`
	// Default is an address used when a connector gives none (kept for the
	// original's schema; spec.address is required on connectors here).
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Default *ParamValue `json:"default,omitempty"`
	// Enum lists the allowed values.
	// +optional
	Enum []string `json:"enum,omitempty"`
	// Properties describe the keys of an object value.
	// +optional
	Properties map[string]PropertySpec `json:"properties,omitempty"`
	// Annotations carry UI metadata.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ClassAuth lists a class's authentication types.
type ClassAuth struct {
	// Types are the authentication types, each with a unique name.
	// +optional
	// +listType=map
	// +listMapKey=name
	Types []AuthType `json:"types,omitempty"`
}

// AuthType is one way to authenticate to a class's targets.
type AuthType struct {
	// Name identifies the type; connectors choose it in spec.auth.name.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// SecretType is the type the credential Secret must have, for example
	// connectors.cpaas.io/bearer-token or kubernetes.io/basic-auth.
	// +optional
	SecretType corev1.SecretType `json:"secretType,omitempty"`
	// Optional means a connector may omit the Secret.
	// +optional
	Optional bool `json:"optional,omitempty"`
	// DisplayName names the type in user interfaces.
	// +optional
	DisplayName string `json:"displayName,omitempty"`
	// Description tells users what the type is for.
	// +optional
	Description string `json:"description,omitempty"`
	// Annotations carry UI metadata.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Params are the keys the Secret must hold, for types other than the
	// well-known ones.
	// +optional
	Params []ParamSpec `json:"params,omitempty"`
	// Generator computes the injected credential with a policy instead of the
	// Secret type's built-in rule.
	// +optional
	Generator *AuthGenerator `json:"generator,omitempty"`
}

// AuthGenerator computes a credential to inject from the Secret's data.
type AuthGenerator struct {
	// Rego is a policy in package proxy that produces an auth object.
	// +optional
	Rego string `json:"rego,omitempty"`
}

// Probe is an HTTP request (or a request to the class API) whose 2xx answer
// (or, with http.response.cel, whose expression) means success.
type Probe struct {
	// HTTP probes the connector's address.
	// +optional
	HTTP *HTTPProbe `json:"http,omitempty"`
	// API probes the class's API.
	// +optional
	API *APIProbe `json:"api,omitempty"`
}

// HTTPProbe is an HTTP request against a connector's address. Path and
// header values are Go text/template + sprig over .Connector and .Secret
// (.Secret.StringData holds the decoded values).
type HTTPProbe struct {
	// Path is the absolute request path, appended to the address's host (its
	// path prefix is not kept).
	// +optional
	Path string `json:"path,omitempty"`
	// Scheme overrides the address's scheme.
	// +optional
	// +kubebuilder:validation:Enum=http;https
	Scheme string `json:"scheme,omitempty"`
	// Host overrides the address's host.
	// +optional
	Host string `json:"host,omitempty"`
	// Method is GET (the default) or POST.
	// +optional
	// +kubebuilder:validation:Enum=GET;POST;HEAD;get;post;head
	Method string `json:"method,omitempty"`
	// DisableRedirect stops the probe from following redirects.
	// +optional
	DisableRedirect bool `json:"disableRedirect,omitempty"`
	// HTTPHeaders are sent with the request.
	// +optional
	// +listType=atomic
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
	// Response judges the answer; without it a 2xx status is success.
	// +optional
	Response *ProbeResponse `json:"response,omitempty"`
}

// ProbeResponse judges a probe's answer.
type ProbeResponse struct {
	// CEL is a boolean CEL expression over response.statusCode (int),
	// response.headers (map of lists, canonical keys), response.body (the
	// body parsed as JSON, null when it is not JSON) and
	// response.bodyString; when given it replaces the 2xx rule, for example
	// "response.statusCode == 200 && response.body.valid == true".
	// +optional
	CEL string `json:"cel,omitempty"`
}

// HTTPHeader is a request header.
type HTTPHeader struct {
	// Name of the header.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value of the header; a template.
	Value string `json:"value"`
}

// APIProbe is a request against the class's API.
type APIProbe struct {
	// Path relative to the class API address.
	// +optional
	Path string `json:"path,omitempty"`
}

// AuthProbe checks one authentication type.
type AuthProbe struct {
	// AuthName is the name of the authentication type it checks.
	// +kubebuilder:validation:MinLength=1
	AuthName string `json:"authName"`
	// Params are the values a connector must give in spec.auth.params.
	// +optional
	Params []ParamSpec `json:"params,omitempty"`
	// Probe is the request; an entry without one only declares Params.
	// +optional
	Probe Probe `json:"probe,omitempty"`
}

// Destination locates a service of the class, as Knative's
// duckv1.Destination: a reference, a URI, or a reference plus a path URI.
type Destination struct {
	// Ref points at the object (a Service) that serves.
	// +optional
	Ref *KReference `json:"ref,omitempty"`
	// URI is an absolute URL, or a path (with its query) relative to Ref.
	// +optional
	URI string `json:"uri,omitempty"`
	// CACerts are PEM certificates to trust when the destination is HTTPS.
	// +optional
	CACerts *string `json:"CACerts,omitempty"`
	// Audience is the OIDC audience of the destination.
	// +optional
	Audience *string `json:"audience,omitempty"`
}

// KReference refers to an object, as Knative's duckv1.KReference.
type KReference struct {
	// Kind of the referent, for example Service.
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the referent (default: the install namespace for
	// cluster-scoped classes).
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// APIVersion of the referent.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Group of the referent, when APIVersion is not given.
	// +optional
	Group string `json:"group,omitempty"`
	// Address names one of the referent's addresses.
	// +optional
	Address *string `json:"address,omitempty"`
}

// ClassProxy is the proxy of a class.
type ClassProxy struct {
	Destination `json:",inline"`
	// AuthExtractor finds the caller's token in requests of the reverse
	// proxy, where it is not in a Basic or Bearer Authorization header.
	// +optional
	AuthExtractor *AuthExtractor `json:"authExtractor,omitempty"`
}

// AuthExtractor is a Rego policy (package proxy) whose auth.token is the
// caller's token.
type AuthExtractor struct {
	// Rego is the policy.
	// +optional
	Rego string `json:"rego,omitempty"`
}

// ClassAPI is the REST API of a class.
type ClassAPI struct {
	Destination `json:",inline"`
	// OpenAPI is an OpenAPI 3 document of the API (kept as written).
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	OpenAPI *runtime.RawExtension `json:"openapi,omitempty"`
	// Permissions map API requests to read, write or delete.
	// +optional
	Permissions *APIPermissions `json:"permissions,omitempty"`
}

// APIPermissions is a Rego policy (package permissions) whose result.verb
// is read, write, delete or empty.
type APIPermissions struct {
	// Rego is the policy.
	// +optional
	Rego string `json:"rego,omitempty"`
}

// Configuration is a named set of templated files.
type Configuration struct {
	// Name of the configuration, chosen by volumes in configuration.names.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Annotations carry UI metadata.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Data maps file names to Go text/template + sprig templates.
	// +optional
	Data map[string]string `json:"data,omitempty"`
	// Params declares parameters the templates read from .configurations.
	// +optional
	Params []ParamSpec `json:"params,omitempty"`
}

// ConnectorClassStatus is the observed state of a ConnectorClass.
type ConnectorClassStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Annotations are status annotations (Knative duck status).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Conditions are ProxyReady, APIReady and their aggregate Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []Condition `json:"conditions,omitempty"`
	// Proxy is the resolved address of the class's proxy.
	// +optional
	Proxy *ProxyStatus `json:"proxy,omitempty"`
	// API is the resolved address of the class's API.
	// +optional
	API *APIStatus `json:"api,omitempty"`
}

// APIStatus holds the resolved API address of a class.
type APIStatus struct {
	// Address is the API base address.
	// +optional
	Address *Addressable `json:"address,omitempty"`
}

// ConnectorClassList is a list of ConnectorClasses.
//
// +kubebuilder:object:root=true
type ConnectorClassList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the classes.
	Items []ConnectorClass `json:"items"`
}
