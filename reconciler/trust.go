package reconciler

import (
	"context"
	"crypto/x509"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// trustPool returns the system roots plus the labelled CA Secrets of the
// install namespace plus the connector's own CA Secret, when given.
func (r *ConnectorReconciler) trustPool(ctx context.Context, own *corev1.Secret) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if r.opts.Namespace != "" {
		var list corev1.SecretList
		if err := r.opts.APIReader.List(ctx, &list, client.InNamespace(r.opts.Namespace), client.MatchingLabels{connectorsv1alpha1.CACertLabel: "true"}); err != nil {
			return nil, fmt.Errorf("list the CA Secrets labelled %s=true in %s: %w", connectorsv1alpha1.CACertLabel, r.opts.Namespace, err)
		}
		for i := range list.Items {
			connectorsv1alpha1.AppendCABundle(pool, &list.Items[i])
		}
	}
	if own != nil {
		connectorsv1alpha1.AppendCABundle(pool, own)
	}
	return pool, nil
}
