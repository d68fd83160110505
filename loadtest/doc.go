// Package loadtest measures what the gateway costs next to what a user would
// do without it, and how far one replica goes. It is the library behind
// `connectors loadtest` and `make bench`.
//
// A run has a scenario (warm keep-alive GETs, a fresh connection per request,
// many watch streams, one large LIST, bytes through an upgraded exec stream,
// or a mix over many connectors) and targets: direct (the client sends the
// real token to the upstream), gateway (the proxy-url and placeholder token
// of a mounted kubeconfig, exactly as kubectl uses it), and two peers the
// tool generates and starts itself: nginx (a TLS reverse proxy that sets
// Authorization) and squid (CONNECT, ssl_bump with its own CA, and
// request_header_add Authorization: the one existing proxy that does what the
// gateway does). Targets are measured interleaved (A B C A B C …) so that
// drift on a shared machine hits all of them alike, and results are reported
// as ratios against direct and against the peers.
//
// The upstream is Upstream: a fast local HTTPS server that answers like the
// Kubernetes API server (a small pod list, a large LIST of a given size, a
// chunked watch whose events carry their write time, an upgradable exec
// stream) and checks the bearer token, so that it is never the bottleneck.
// Latencies go into HDR histograms (p50/p90/p99/p99.9/max); open-loop runs
// schedule requests at a constant rate and measure from the scheduled time
// (no coordinated omission). The CPU seconds and peak RSS of each proxy
// process come from /proc.
//
// Every address the tool sends traffic to must be a loopback address: it is
// a measuring tool, not a load generator for other people's servers.
package loadtest
