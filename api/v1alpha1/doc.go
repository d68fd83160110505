// Package v1alpha1 holds the connectors.alauda.io/v1alpha1 API: Connector
// (namespaced: a target address plus the Secret with its credential) and
// ConnectorClass (cluster-scoped: how a kind of target is probed, proxied and
// configured).
//
// Field names and JSON keys are a compatibility contract with Alauda's
// Connectors: a manifest written for that product applies here unchanged.
// Condition type and reason names are exported constants, and
// [AggregateReady] computes the Ready condition from the others.
//
// +kubebuilder:object:generate=true
// +groupName=connectors.alauda.io
package v1alpha1
