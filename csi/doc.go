// Package csi is the connectors-csi node plugin: the CSI Identity and Node
// services (no Controller service) that mount ConnectorClass configurations
// (for the k8s class: a kubeconfig) into pods as inline ephemeral volumes.
//
// A pod asks for a volume like
//
//	csi:
//	  driver: connectors-csi
//	  readOnly: true
//	  volumeAttributes:
//	    connector.name: k8s-connector
//	    configuration.names: kubeconfig
//
// NodePublishVolume reads the pod from the volume context (podInfoOnMount),
// resolves the connector(s), checks that the pod's ServiceAccount may use
// them (the gateway's rule: same namespace, or RBAC get on the connector),
// takes the kubelet-provided token for the connectors-proxy audience (or
// mints one bound to the pod), renders the configurations with package
// render, mounts a size-capped tmpfs at the target path and writes the files
// with the kubelet's atomic-writer scheme. The kubelet calls
// NodePublishVolume again periodically (requiresRepublish); each call
// re-renders and rewrites only when the content changed, and a minted token
// is replaced once it has used 80 % of its lifetime.
//
// Volume attributes:
//
//	connector.name        connector in the pod's namespace (or connector.namespace)
//	connector.namespace   namespace of connector.name; default the pod's
//	connectors            comma-separated "name" or "namespace/name", in
//	                      addition to connector.name
//	configuration.names   comma-separated configuration names; "!file" excludes a file
//	configuration.params.<name>  value of a configuration parameter
//	token.expiration      lifetime of a minted token (Go duration, default 30m, 10m to 24h)
//
// # Chart-facing metadata
//
// The CSIDriver object (see DriverObject):
//
//	apiVersion: storage.k8s.io/v1
//	kind: CSIDriver
//	metadata:
//	  name: connectors-csi
//	spec:
//	  attachRequired: false
//	  podInfoOnMount: true
//	  requiresRepublish: true
//	  volumeLifecycleModes: [Ephemeral]
//	  tokenRequests:
//	  - audience: connectors-proxy
//
// The driver runs as a DaemonSet next to the node-driver-registrar sidecar.
// Socket layout (DriverName = connectors-csi):
//
//	/var/lib/kubelet/plugins/connectors-csi/csi.sock   the driver's socket
//	    (hostPath /var/lib/kubelet/plugins/connectors-csi mounted at /csi in both
//	    containers; the driver listens on --endpoint unix:///csi/csi.sock and the
//	    registrar gets --csi-address=/csi/csi.sock and
//	    --kubelet-registration-path=/var/lib/kubelet/plugins/connectors-csi/csi.sock)
//	/var/lib/kubelet/plugins_registry/                  the registrar's registration
//	    socket directory (hostPath mounted at /registration in the registrar)
//	/var/lib/kubelet/pods                               mounted into the driver with
//	    mountPropagation: Bidirectional (the driver container is privileged so
//	    its tmpfs mounts reach the kubelet)
//
// The package also serves the rendered configurations over HTTP
// (ConfigurationsAPI, mounted by the control server) and fetches them
// (Fetch, used by `connectors kubeconfig`).
//
// Tokens and rendered contents never reach a log line or an error: the
// gRPC logging interceptor logs the volume context with the token key
// redacted and the keys of the secrets only.
package csi
