package devenv

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/connectors-io/connectors/gateway"
)

// GatewayCASecret is the Secret that holds the dev gateway's CA.
const GatewayCASecret = "connectors-gateway-ca"

// GatewayCA returns the gateway CA of an earlier run, stored in the Secret
// GatewayCASecret of namespace (kubeconfigs rendered with it keep
// working), or a new one when there is none or it cannot be used.
func GatewayCA(ctx context.Context, c client.Reader, namespace string, log logr.Logger) (ca *gateway.CA, certPEM, keyPEM []byte, err error) {
	var s corev1.Secret
	err = c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: GatewayCASecret}, &s)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, nil, nil, fmt.Errorf("read the gateway CA: %w", err)
	default:
		certPEM, keyPEM = s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
		ca, perr := gateway.ParseCA(certPEM, keyPEM)
		if perr == nil {
			log.Info("reusing the gateway CA", "secret", namespace+"/"+GatewayCASecret)
			return ca, certPEM, keyPEM, nil
		}
		log.Info("the stored gateway CA is unusable: generating a new one", "secret", namespace+"/"+GatewayCASecret, "error", perr)
	}
	return gateway.GenerateCA("connectors dev gateway")
}
