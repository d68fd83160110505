package v1alpha1

import (
	"crypto/x509"

	corev1 "k8s.io/api/core/v1"
)

// CACertLabel marks the Secrets of the install namespace (label value
// "true") whose CA bundles every connector's target is trusted with, in
// addition to the system roots and the connector's own caCertSecretRef.
const CACertLabel = "connectors.cpaas.io/ca-cert"

// CABundleKeys returns the data keys a CA Secret's PEM bundle is read
// from, in order of preference.
func CABundleKeys() []string { return []string{"ca.crt", "ca-bundle.crt", "tls.crt"} }

// AppendCABundle adds the PEM certificates that s holds under
// [CABundleKeys] to pool and reports whether it added any.
func AppendCABundle(pool *x509.CertPool, s *corev1.Secret) bool {
	added := false
	for _, k := range CABundleKeys() {
		if pem, found := s.Data[k]; found && pool.AppendCertsFromPEM(pem) {
			added = true
		}
	}
	return added
}
