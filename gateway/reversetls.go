package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/connectors-io/connectors/internal/tlsconfig"
)

// The reverse proxy over TLS (Options.ReverseTLSListener): the same
// reverse proxy as on the plain listener, behind a leaf of the gateway CA
// for the name the client asked for, so that git, pip and registry clients
// that trust the mounted ca.cert need no insecure setting. Only two kinds
// of names get a leaf: a connector's alias host (c-<name>.<namespace>…,
// the host resolver) and the gateway's own names (ReverseTLSHosts, the path
// resolver's host); any other name fails the handshake, so no leaf is
// minted for a host that is not the gateway's.

// reverseTLSOnly is the answer to a forward-proxy request on the TLS
// listener.
const reverseTLSOnly = "this port serves the reverse proxy only: send requests to a connector's proxy URL; CONNECT and absolute URIs go to the proxy port"

// reverseTLSServer serves the reverse proxy over TLS.
func (g *Gateway) reverseTLSServer() *http.Server {
	srv := g.proxyServer()
	srv.Handler = http.HandlerFunc(g.serveReverseTLS)
	srv.TLSConfig = tlsconfig.Modern(&tls.Config{
		GetCertificate: g.reverseLeaf,
		NextProtos:     []string{"h2", "http/1.1"},
	})
	return srv
}

// errNoAlias fails the handshake of a name that is not the gateway's.
var errNoAlias = errors.New("the name is neither a connector's proxy host (c-<name>.<namespace>.svc…) nor one of the gateway's (--reverse-tls-hosts)")

// reverseLeaf is the leaf for the server name of a handshake: a connector
// alias host or one of ReverseTLSHosts; without a server name (an address
// dialed by IP), the first of ReverseTLSHosts.
func (g *Gateway) reverseLeaf(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" && len(g.opts.ReverseTLSHosts) > 0 {
		name = g.opts.ReverseTLSHosts[0]
	}
	if !isAliasHost(name, g.opts.ClusterDomain) && !slices.Contains(g.opts.ReverseTLSHosts, name) {
		g.metrics.auth("tls-name")
		return nil, fmt.Errorf("reverse proxy TLS for %q: %w", hello.ServerName, errNoAlias)
	}
	return g.leaves.get(name)
}

// isAliasHost says whether name is a connector's proxy host in the
// cluster: c-<name>.<namespace>, with .svc, or with .svc.<domain>; never a
// name of another domain that merely begins so (c-a.b.svc.example.com).
func isAliasHost(name, domain string) bool {
	if _, ok := hostRef(name); !ok {
		return false
	}
	labels := strings.SplitN(name, ".", 4)
	return len(labels) <= 3 || labels[3] == domain
}

// serveReverseTLS serves the requests of the TLS listener: origin-form
// requests only.
func (g *Gateway) serveReverseTLS(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect || r.URL.IsAbs() {
		writeProxyError(w, perr(http.StatusMethodNotAllowed, "%s", reverseTLSOnly))
		return
	}
	g.serveReverse(w, r)
}
