// Package tlsconfig holds the one TLS policy of Connectors: the gateway's
// tunnels and its connections to connector targets, and the controller's
// probes of those targets (which must succeed exactly when the gateway's
// connections would) negotiate TLS 1.2 or later and, for TLS 1.2, only
// ECDHE key exchange with an AEAD cipher. TLS 1.3's suites are all AEAD and
// not configurable in Go.
package tlsconfig
