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
// read afresh (a rotated Secret applies to the next request), or, when the
// connector's auth type has a Rego generator, the generator that computes
// it from the request (policy.go), or, for a registry token Secret (and a
// basic-auth Secret on the registries' path resolver of a class annotated
// connectors.io/registry-login), the login of the registry's token flow
// (registry.go).
func (f *forwarder) credential(ctx context.Context) (func(*http.Request), *generator, *registryLogin, error) {
	ref := f.c.Spec.Auth.SecretRef
	if ref == nil {
		return func(*http.Request) {}, nil, nil, nil
	}
	sec, err := f.g.state.secret(ctx, f.c.Namespace, ref.Name)
	if err != nil {
		// The client learns that the Secret is unreadable, the log why.
		f.g.opts.Logger.Error(err, "read the Secret of a connector", "connector", f.ref, "secret", ref.Name)
		return nil, nil, nil, errors.New("its Secret cannot be read")
	}
	if gen := f.generator(ctx, sec); gen != nil {
		return nil, gen, nil, nil
	}
	switch sec.Type {
	case connectorsv1alpha1.SecretTypeBearerToken:
		token := strings.TrimSpace(string(sec.Data[connectorsv1alpha1.BearerTokenKey]))
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, nil, nil, nil
	case corev1.SecretTypeBasicAuth:
		user, pass := string(sec.Data[corev1.BasicAuthUsernameKey]), string(sec.Data[corev1.BasicAuthPasswordKey])
		if f.reverse != nil && f.reverse.registry && f.registryLoginClass(ctx) {
			// A registry (Harbor, say) may take the user and password
			// only at its token service: the registry's own challenge
			// decides, as for a registry token Secret. Only for classes
			// that ask for it: the client chooses the path.
			return func(*http.Request) {}, nil, &registryLogin{user: user, pass: pass, version: sec.ResourceVersion}, nil
		}
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }, nil, nil, nil
	case connectorsv1alpha1.SecretTypeGitLabPAT:
		token := strings.TrimSpace(string(sec.Data[connectorsv1alpha1.GitLabPATKey]))
		return func(r *http.Request) { r.Header.Set("Private-Token", token) }, nil, nil, nil
	case connectorsv1alpha1.SecretTypeDistributionRegistryToken:
		login := &registryLogin{user: string(sec.Data[corev1.BasicAuthUsernameKey]), pass: string(sec.Data[corev1.BasicAuthPasswordKey]), version: sec.ResourceVersion}
		return func(*http.Request) {}, nil, login, nil
	default:
		return nil, nil, nil, fmt.Errorf("its Secret type %s has no injection rule (give the class's auth type %s a generator)", sec.Type, f.c.Spec.Auth.Name)
	}
}

// registryLoginClass says whether the connector's class asks for the
// registry login of basic-auth Secrets (connectors.io/registry-login).
func (f *forwarder) registryLoginClass(ctx context.Context) bool {
	class := f.g.state.class(ctx, f.c)
	return class != nil && class.Annotations[connectorsv1alpha1.RegistryLoginAnnotation] == "true"
}

// generator returns the Rego generator of the connector's auth type, with
// the Secret's data, or nil when the type has none.
func (f *forwarder) generator(ctx context.Context, sec *corev1.Secret) *generator {
	class := f.g.state.class(ctx, f.c)
	if class == nil {
		return nil
	}
	for _, t := range class.Spec.Auth.Types {
		if t.Name != f.c.Spec.Auth.Name || t.Generator == nil || strings.TrimSpace(t.Generator.Rego) == "" {
			continue
		}
		data := make(map[string]string, len(sec.Data))
		for k, v := range sec.Data {
			data[k] = string(v)
		}
		return &generator{class: class.Name, authType: t.Name, module: t.Generator.Rego, data: data}
	}
	return nil
}
