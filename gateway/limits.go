package gateway

import (
	"net/http"
	"strconv"
)

// The gateway's fair limits. A tunnel takes a slot of the gateway, of its
// connector, of its pod (the token's identity) and of that identity's
// namespace; a request in a tunnel takes a slot of its pod and of its
// namespace. One tenant thus cannot take every slot of a replica: a pod
// stops at its own limit, a namespace at its own, well below the
// gateway's.

// tunnelKeys are the counters a tunnel counts against.
type tunnelKeys struct{ connector, pod, namespace string }

func (s *session) podKey() string {
	if s.id.PodUID != "" {
		return s.id.Namespace + "/" + s.id.PodName
	}
	return s.id.Namespace + "/serviceaccount/" + s.id.ServiceAccountName // unbound tokens: per ServiceAccount
}

// acquire takes a tunnel slot, or names the limit that is full.
func (g *Gateway) acquire(k tunnelKeys) *proxyError {
	g.mu.Lock()
	defer g.mu.Unlock()
	o := g.opts
	switch {
	case g.total >= o.MaxTunnels:
		return limitError("open tunnels of this gateway replica", o.MaxTunnels)
	case g.perConn[k.connector] >= o.MaxTunnelsPerConnector:
		return limitError("open tunnels of connector "+k.connector, o.MaxTunnelsPerConnector)
	case g.perPod[k.pod] >= o.MaxTunnelsPerPod:
		return limitError("open tunnels of pod "+k.pod, o.MaxTunnelsPerPod)
	case g.perNamespace[k.namespace] >= o.MaxTunnelsPerNamespace:
		return limitError("open tunnels of namespace "+k.namespace, o.MaxTunnelsPerNamespace)
	}
	g.total++
	g.perConn[k.connector]++
	g.perPod[k.pod]++
	g.perNamespace[k.namespace]++
	return nil
}

func (g *Gateway) release(k tunnelKeys) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	decr(g.perConn, k.connector)
	decr(g.perPod, k.pod)
	decr(g.perNamespace, k.namespace)
}

func decr(m map[string]int, k string) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// acquireRequest takes a slot for one request of the session, or names the
// limit that is full; release gives it back.
func (g *Gateway) acquireRequest(s *session) (release func(), perror *proxyError) {
	pod, ns := s.podKey(), s.id.Namespace
	g.mu.Lock()
	defer g.mu.Unlock()
	o := g.opts
	switch {
	case g.requestsPerPod[pod] >= o.MaxRequestsPerPod:
		return nil, limitError("requests in flight of pod "+pod, o.MaxRequestsPerPod)
	case g.requestsPerNamespace[ns] >= o.MaxRequestsPerNamespace:
		return nil, limitError("requests in flight of namespace "+ns, o.MaxRequestsPerNamespace)
	}
	g.requestsPerPod[pod]++
	g.requestsPerNamespace[ns]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		decr(g.requestsPerPod, pod)
		decr(g.requestsPerNamespace, ns)
	}, nil
}

func limitError(what string, limit int) *proxyError {
	return perr(http.StatusServiceUnavailable, "too many %s (limit %s): retry later", what, strconv.Itoa(limit))
}
