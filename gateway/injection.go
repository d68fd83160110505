package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// stripClientCredentials removes what a client may send to speak for
// someone upstream: Authorization, Proxy-Authorization and every
// Impersonate-* header (httputil.ReverseProxy removes the hop-by-hop
// headers itself).
func stripClientCredentials(h http.Header) {
	h.Del("Authorization")
	h.Del("Proxy-Authorization")
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "impersonate-") {
			h.Del(k)
		}
	}
}

// credential returns the function that injects the connector's credential,
// read afresh (a rotated Secret applies to the next request).
func (f *forwarder) credential(ctx context.Context) (func(*http.Request), error) {
	ref := f.c.Spec.Auth.SecretRef
	if ref == nil {
		return func(*http.Request) {}, nil
	}
	sec, err := f.g.state.secret(ctx, f.c.Namespace, ref.Name)
	if err != nil {
		// The client learns that the Secret is unreadable, the log why.
		f.g.opts.Logger.Error(err, "read the Secret of a connector", "connector", f.ref, "secret", ref.Name)
		return nil, errors.New("its Secret cannot be read")
	}
	switch sec.Type {
	case connectorsv1alpha1.SecretTypeBearerToken:
		token := strings.TrimSpace(string(sec.Data[connectorsv1alpha1.BearerTokenKey]))
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, nil
	case corev1.SecretTypeBasicAuth:
		user, pass := string(sec.Data[corev1.BasicAuthUsernameKey]), string(sec.Data[corev1.BasicAuthPasswordKey])
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }, nil
	default:
		return nil, fmt.Errorf("its Secret type %s has no injection rule", sec.Type)
	}
}
