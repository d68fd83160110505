// Package reconciler keeps the status of Connectors and ConnectorClasses.
//
// For each Connector, in order, each step setting its condition:
// ConnectorClassReady (the class exists), SecretReady (the credential Secret
// exists with the class's type and keys, or is optional), LivenessReady (the
// class's liveness probe against the address), AuthReady (the class's auth
// probe for spec.auth.name; without one, for a registry token Secret, the
// registry login of package registrylogin), ProxyServiceReady (the Service c-<name>, an
// ExternalName alias of the class's proxy, owned by the Connector), then
// status.proxy.httpAddress.url and the aggregate Ready. Probe templates are
// text/template + sprig over .Connector and .Secret. Upstream TLS trusts the
// system roots, the CA Secrets labelled connectors.cpaas.io/ca-cert=true in
// the install namespace and the connector's caCertSecretRef. Transitions emit
// events (Warning for failures); connectors are probed again periodically.
//
// The same reconcile.Reconciler serves two modes: watch mode (a
// controller-runtime manager; see SetupWithManager) and serverless mode
// (Server: one reconcile per CloudEvent or POST, with an uncached client).
//
// Secrets are never cached whole: the reconciler reads a connector's Secret
// directly (Options.APIReader) and watch mode watches Secret metadata only.
package reconciler
