package tlsconfig

import "crypto/tls"

// Suites returns the TLS 1.2 cipher suites of the policy, a new slice on
// each call: ECDHE with AES-GCM or ChaCha20-Poly1305, for ECDSA and RSA
// certificates. No CBC, no RSA key exchange, no 3DES or RC4.
func Suites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// Modern sets c's MinVersion to TLS 1.2 and its CipherSuites to Suites,
// and returns c. The rest of c (certificates, roots, ALPN) is the
// caller's.
func Modern(c *tls.Config) *tls.Config {
	c.MinVersion = tls.VersionTLS12
	c.CipherSuites = Suites()
	return c
}
