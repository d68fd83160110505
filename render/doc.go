// Package render renders the configurations of a ConnectorClass (for the k8s
// class: "kubeconfig") for one or more connectors.
//
// It is a library shared by the CSI driver (package csi) and the control
// API (package control). Render reads nothing from the cluster and writes
// nothing to disk: callers give it the class, the connectors, the proxy
// token and the gateway CA, and it returns the files to mount. Resolver
// reads what a rendering needs (the connectors an identity may use, each of
// them usable, and their class) for both callers.
//
// Templates run in the sandbox of package render/sandbox (sprig without
// env, expandenv and key generation; bounded output, function results and
// time); a missing key prints <no value>, as text/template and the original
// do. Their data (docs/design.md, "CSI driver"):
//
//	.connector        the first connector: .metadata (name, namespace, uid,
//	                  labels, annotations), .spec (the JSON form of the spec)
//	                  and .status.proxyAddress (a string)
//	.connectors       every connector, in the same shape (plus .name and
//	                  .namespace)
//	.connectorclass   .metadata.name and .proxyAddress (the class proxy URL)
//	.context          .token (the proxy token) and .proxy.caCert (gateway CA PEM)
//	.configurations   the parameters of the configuration being rendered:
//	                  declared defaults overridden by Input.Params and then
//	                  Input.ConfigParams
//
// With connectors of several classes (Input.Classes), each configuration
// renders from the class of its connectors, for them; the proxy built-ins
// name every connector at the last class's proxy.
//
// Besides the files of the chosen configurations, Render adds the built-in
// files context.token, context.proxy.caCert, ca.crt, ca.cert, and, when the
// class has a proxy, http.proxy, https.proxy, .env and
// connector.status.proxyAddress; a configuration's file replaces a built-in
// or an earlier file of the same name. A selection such as
// "kubeconfig,!context.token" picks configurations by name and excludes
// files with a leading "!".
//
// Errors name the class, the configuration and the file, and wrap one of
// ErrInvalid, ErrNotFound or ErrTemplate so callers can map them to gRPC
// codes or HTTP statuses. Errors never contain the token.
package render
