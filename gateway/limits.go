package gateway

// acquire takes a tunnel slot of the connector.
func (g *Gateway) acquire(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.opts.MaxTunnels || g.perConn[key] >= g.opts.MaxTunnelsPerConnector {
		return false
	}
	g.total++
	g.perConn[key]++
	return true
}

func (g *Gateway) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.perConn[key]--; g.perConn[key] <= 0 {
		delete(g.perConn, key)
	}
}
