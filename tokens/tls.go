package tokens

import (
	"crypto/tls"
	"net"
)

// tlsConfigFor returns a client TLS config for a rediss:// address, verified
// against the system roots.
func tlsConfigFor(addr string) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
}
