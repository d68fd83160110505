package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/tlsconfig"
)

// The reverse proxy over TLS (Options.ReverseTLSListener): the same
// reverse proxy as on the plain listener, behind a leaf of the gateway CA
// for the name the client asked for, so that git, pip and registry clients
// that trust the mounted ca.cert need no insecure setting. Only two kinds
// of names get a leaf: the alias host of a connector that exists
// (c-<name>.<namespace>.svc[.<cluster domain>], the host resolver) and the
// gateway's own names (ReverseTLSHosts, the path resolver's host); any other
// name fails the handshake, so no leaf is minted for a host that is not the
// gateway's or a name a client makes up.

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
	if !slices.Contains(g.opts.ReverseTLSHosts, name) {
		ref, ok := aliasRef(name, g.opts.ClusterDomain)
		if ok {
			// Only a connector that exists (in the informer's cache) gets
			// a leaf: no key is minted for names a client makes up.
			_, err := g.state.connector(hello.Context(), ref.Namespace, ref.Name)
			ok = err == nil
		}
		if !ok {
			g.metrics.auth("tls-name")
			return nil, fmt.Errorf("reverse proxy TLS for %q: %w", hello.ServerName, errNoAlias)
		}
	}
	return g.leaves.get(name)
}

// aliasRef reads the connector of a proxy host in the cluster:
// c-<name>.<namespace>.svc or c-<name>.<namespace>.svc.<domain>; never a
// name of another domain that merely begins so (c-a.b.svc.example.com) nor
// a two-label one (c-a.com).
func aliasRef(name, domain string) (connectorsv1alpha1.ConnectorRef, bool) {
	ref, ok := hostRef(name)
	labels := strings.SplitN(name, ".", 4)
	if !ok || len(labels) < 3 || (len(labels) == 4 && labels[3] != domain) {
		return connectorsv1alpha1.ConnectorRef{}, false
	}
	return ref, true
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
