package reconciler

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CACertLabel marks Secrets of the install namespace whose CA bundles every
// connector trusts.
const CACertLabel = "connectors.cpaas.io/ca-cert"

// errBadCASecret marks a caCertSecretRef without a usable certificate.
var errBadCASecret = errors.New("unusable CA Secret")

// caKeys are the data keys read from a CA Secret, in order of preference.
var caKeys = []string{"ca.crt", "ca-bundle.crt", "tls.crt"}

// trustPool returns the system roots plus the labelled CA Secrets of the
// install namespace plus the connector's own CA Secret (which must exist and
// hold PEM).
func (r *ConnectorReconciler) trustPool(ctx context.Context, namespace string, own *corev1.Secret) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if r.opts.Namespace != "" {
		var list corev1.SecretList
		if err := r.opts.APIReader.List(ctx, &list, client.InNamespace(r.opts.Namespace), client.MatchingLabels{CACertLabel: "true"}); err != nil {
			return nil, fmt.Errorf("list the CA Secrets labelled %s=true in %s: %w", CACertLabel, r.opts.Namespace, err)
		}
		for i := range list.Items {
			appendCA(pool, &list.Items[i])
		}
	}
	if own != nil && !appendCA(pool, own) {
		return nil, fmt.Errorf("%w: spec.caCertSecretRef %s/%s holds no PEM certificate under %v", errBadCASecret, namespace, own.Name, caKeys)
	}
	return pool, nil
}

func appendCA(pool *x509.CertPool, s *corev1.Secret) bool {
	ok := false
	for _, k := range caKeys {
		if pem, found := s.Data[k]; found && pool.AppendCertsFromPEM(pem) {
			ok = true
		}
	}
	return ok
}
