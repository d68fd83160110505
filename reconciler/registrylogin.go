package reconciler

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/registrylogin"
)

// checkRegistryLogin is the auth check of a connector whose Secret is a
// cpaas.io/distribution-registry-token and whose class declares no auth
// probe for its auth type (the oci class): a probe of the class's kind
// cannot follow a token registry's challenge, which takes the credential
// only at the token service it names. The check is the login the gateway
// does (package registrylogin): /v2/'s challenge, Basic or a token from its
// realm with the Secret's user name and password, then /v2/ with it.
func (r *ConnectorReconciler) checkRegistryLogin(ctx context.Context, c *connectorsv1alpha1.Connector, secret *corev1.Secret, roots *x509.CertPool) connectorsv1alpha1.Condition {
	const t = connectorsv1alpha1.ConditionAuthReady
	fail := func(format string, args ...any) connectorsv1alpha1.Condition {
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed, format, args...)
	}
	u, err := url.Parse(c.Spec.Address)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fail("registry login: the address %q is not an http(s) URL of a registry", c.Spec.Address)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.ProbeTimeout)
	defer cancel()
	describe := func(err error) string { return describeDialError(err).Error() }
	inner := r.probeClient(roots, false).Transport // go-containerregistry checks its own redirects
	rt, err := registrylogin.Transport(ctx, u, string(secret.Data[corev1.BasicAuthUsernameKey]), string(secret.Data[corev1.BasicAuthPasswordKey]), inner, nil, describe)
	if err != nil {
		return fail("registry login at %s: %s", u.Host, loginFailure(err, secret.Name))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/v2/"}).String(), nil)
	if err != nil {
		return fail("registry login at %s: %s", u.Host, err)
	}
	req.Header.Set("User-Agent", "connectors-reconciler")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return fail("registry login at %s: %s", u.Host, loginFailure(err, secret.Name))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail("registry login at %s: %s", u.Host, loginFailure(&registrylogin.StatusError{Status: resp.StatusCode}, secret.Name))
	}
	return ok(t)
}

// loginFailure says why a registry login failed, naming the Secret when
// the registry or its token service refused the credential.
func loginFailure(err error, secretName string) string {
	var status *registrylogin.StatusError
	if errors.As(err, &status) && (status.Status == http.StatusUnauthorized || status.Status == http.StatusForbidden) {
		return fmt.Sprintf("%s: the credential in Secret %s is not accepted", status.Error(), secretName)
	}
	return err.Error()
}
