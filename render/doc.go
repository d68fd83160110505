// Package render renders the configurations of a ConnectorClass (for the k8s
// class: "kubeconfig") for one or more connectors.
//
// It is a leaf library shared by the CSI driver (package csi) and the
// control API: it reads nothing from the cluster and writes nothing to disk.
// Callers give it the class, the connectors, the proxy token and the
// gateway CA; Render returns the files to mount.
//
// Templates are Go text/template with the sprig v3 functions (without env
// and expandenv, which would expose the driver's environment) and
// missingkey=error. Their data has the shape of DESIGN §7:
//
//	.connector        the first connector: .metadata (name, namespace, uid,
//	                  labels, annotations), .spec (the JSON form of the spec)
//	                  and .status.proxyAddress (a string)
//	.connectors       every connector, in the same shape
//	.connectorclass   .metadata.name and .proxyAddress (the class proxy URL)
//	.context          .token (the proxy token) and .proxy.caCert (gateway CA PEM)
//	.configurations   the configuration parameters: declared defaults
//	                  overridden by Input.Params
//
// Besides the files of the chosen configurations, Render adds the built-in
// files context.token, context.proxy.caCert, ca.crt, http.proxy,
// https.proxy, .env and connector.status.proxyAddress. A selection such as
// "kubeconfig,!context.token" picks configurations by name and excludes
// files with a leading "!".
//
// Output is bounded in size (per file and in total) and template execution
// in time; errors name the class, the configuration and the file, and wrap
// one of ErrInvalid, ErrNotFound or ErrTemplate so callers can map them to
// gRPC codes or HTTP statuses. Errors never contain the token.
package render
