package testbed

import (
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TokenOptions shape a TokenRequest.
type TokenOptions struct {
	// Audiences of the token; empty means the apiserver's own.
	Audiences []string
	// Expiration is the requested lifetime; zero means the apiserver default.
	// The apiserver refuses less than 10 minutes.
	Expiration time.Duration
	// BoundPod binds the token to a Pod (name and UID) when set.
	BoundPod *corev1.Pod
}

// RequestToken asks the apiserver for a ServiceAccount token (TokenRequest)
// and returns it with its expiry.
func (cp *ControlPlane) RequestToken(tb testing.TB, namespace, serviceAccount string, opts TokenOptions) (string, time.Time) {
	tb.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: opts.Audiences}}
	if opts.Expiration > 0 {
		secs := int64(opts.Expiration / time.Second)
		req.Spec.ExpirationSeconds = &secs
	}
	if opts.BoundPod != nil {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{
			Kind: "Pod", APIVersion: "v1", Name: opts.BoundPod.Name, UID: opts.BoundPod.UID,
		}
	}
	resp, err := cp.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(tb.Context(), serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("testbed: token for serviceaccount %s/%s: %v", namespace, serviceAccount, err)
	}
	return resp.Status.Token, resp.Status.ExpirationTimestamp.Time
}
