package v1alpha1

import (
	"bytes"
	"crypto/x509"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// CACertLabel marks the Secrets of the install namespace (label value
// "true") whose CA bundles every connector's target is trusted with, in
// addition to the system roots and the connector's own caCertSecretRef.
const CACertLabel = "connectors.cpaas.io/ca-cert"

// AppendCABundle adds the PEM certificates a CA Secret holds to pool and
// reports whether it added any. As in the original, every key is read
// whose name ends in .crt or .pem or whose value looks like PEM (a
// certificate block), in key order; other PEM blocks (keys) are skipped.
func AppendCABundle(pool *x509.CertPool, s *corev1.Secret) bool {
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	added := false
	for _, k := range keys {
		v := s.Data[k]
		if !strings.HasSuffix(k, ".crt") && !strings.HasSuffix(k, ".pem") && !bytes.Contains(v, []byte("-----BEGIN CERTIFICATE-----")) {
			continue
		}
		if pool.AppendCertsFromPEM(v) {
			added = true
		}
	}
	return added
}

// CABundleKeysDescription says which keys AppendCABundle reads, for
// messages.
const CABundleKeysDescription = "keys ending in .crt or .pem, or any PEM certificate value"
