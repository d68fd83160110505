// Package gateway is the data path of Connectors: a shared HTTP forward
// proxy that workloads reach with the proxy-url of their mounted kubeconfig.
//
// A client sends CONNECT host:port (HTTPS targets) or an absolute-URI
// request (plain-HTTP targets) with Proxy-Authorization: Basic
// base64("<namespace>/<connector>[,…]:<pod token>"). The gateway validates
// the token (package tokens), authorizes the identity for the connector,
// checks that the target is one of the connector's addresses (it is never an
// open proxy) and that the connector is Ready. For CONNECT it answers 200,
// terminates TLS inside the tunnel with a leaf certificate for the requested
// host signed by its own CA (ECDSA P-256, minted once per host, bounded
// cache), serves HTTP/2 or HTTP/1.1 there, and forwards each request with
// httputil.ReverseProxy: the client's Authorization, Proxy-Authorization,
// Impersonate-* and hop-by-hop headers are removed and the connector's
// credential is injected (Bearer for connectors.cpaas.io/bearer-token, Basic
// for kubernetes.io/basic-auth). Upstream TLS trusts the system roots, the CA
// Secrets labelled connectors.cpaas.io/ca-cert=true in the install namespace
// and the connector's caCertSecretRef. Ordinary requests use pooled HTTP/2
// upstream connections; Upgrade requests (WebSocket, SPDY/3.1: exec, attach,
// port-forward) use a separate HTTP/1.1-only transport. Responses stream with
// immediate flushes.
//
// Every request inside a tunnel re-validates the token (a cache hit), so a
// revoked token stops working at once; a tunnel is closed when its token
// expires (plus a grace) and when idle. Tunnels are limited globally and per
// connector. Connectors and classes come from watches; of the Secrets, only
// those that connectors reference are watched, one watch each (field
// selector metadata.name), plus the labelled CA Secrets of the install
// namespace, so a rotated credential applies to the next request and no
// other Secret is ever listed or read.
//
// Observability: /healthz, /readyz and /metrics on an admin listener,
// metrics with bounded labels (connector, method class, code class,
// protocol), and one audit log line per request with the pod identity from
// the token — never the token.
package gateway
