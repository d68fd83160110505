// Package control is the HTTP control API of Connectors, served by
// `connectors controller` (watch mode), `connectors control` (serverless
// mode, on $PORT, as Knative runs it) and `connectors dev`:
//
//	POST /                                   a CloudEvent (binary or structured, as a Knative
//	                                         ApiServerSource sends it) about a Connector, a
//	                                         ConnectorClass or a Secret
//	POST /v1/reconcile/{ns}/{name}           reconcile one connector
//	POST /v1/namespaces/{ns}/connectors/{name}/token
//	                                         a proxy token of the caller for the connector
//	GET  /v1/namespaces/{ns}/connectors/{name}/configurations/{configuration}
//	                                         the configuration rendered for the caller
//	GET  /healthz
//
// Every route but /healthz authenticates its caller with a ServiceAccount
// bearer token and a TokenReview; nothing is read, probed or minted for a
// caller that fails it, and no condition text reaches a caller that may not
// get the connector.
//
//   - Triggers (the first two routes) take tokens for the trigger audience
//     (Options.TriggerAudience, default "connectors-control"): what Knative
//     Eventing's OIDC sink authentication sends. The caller must be allowed
//     to update connectors/status (group connectors.alauda.io) where the
//     change applies: in the connector's namespace (with its name) for a
//     Connector and for POST /v1/reconcile, in the Secret's namespace for a
//     Secret, cluster-wide for a ConnectorClass and for a CA Secret that
//     every connector trusts. A trigger can make the reconciler write the
//     status, so it needs the right to write it. The chart's ClusterRole
//     connectors-trigger (chart/rbac/trigger-role.yaml) grants it.
//     Missing or invalid token: 401; not allowed: 403. Answers carry a
//     connector's condition reason and message only when the caller may
//     get that connector.
//   - The token and configurations APIs take the caller's own API token
//     (the API server's audience), authorize the use of the connector as
//     the gateway does, and refuse a connector that is not usable
//     (connectorsv1alpha1.Connector.Usable) with the gateway's message.
//     That message (a condition's reason and text) reaches only callers
//     allowed to use the connector: a ServiceAccount of its namespace, or
//     one granted get on it; others are refused before it is read.
//
// In watch mode (Options.Queue) a trigger only enqueues the connectors it
// concerns into the controller's work queue, so only the elected leader
// reconciles, and answers 202 with the connectors queued. In serverless
// mode (Options.Runner) it reconciles synchronously and answers 200 with
// each connector's Ready condition, as Knative expects.
//
// Fetch and WritePrivateFile are the client side, used by
// `connectors kubeconfig` outside pods.
package control
