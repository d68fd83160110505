package gateway

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// state reads connectors and classes from informers, and the Secrets that
// connectors reference (and the labelled CA Secrets of the install
// namespace) from watches of exactly those Secrets.
type state struct {
	cache     cache.Cache
	namespace string // install namespace: labelled CA Secrets
	secrets   *secretWatches
	pools     *lru.Cache[string, *x509.CertPool] // by trust version
}

func newState(c cache.Cache, secrets *secretWatches, namespace string, size int) *state {
	// lru.New fails only for a size <= 0, which the options exclude.
	p, _ := lru.New[string, *x509.CertPool](size)
	return &state{cache: c, namespace: namespace, secrets: secrets, pools: p}
}

// CacheOptions returns the options of the cache to pass as Options.Cache:
// Connectors and classes are read on every request and never modified, so
// reads skip the deep copy.
func CacheOptions(scheme *runtime.Scheme) cache.Options {
	return cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&connectorsv1alpha1.Connector{}:      {UnsafeDisableDeepCopy: ptr.To(true)},
		&connectorsv1alpha1.ConnectorClass{}: {UnsafeDisableDeepCopy: ptr.To(true)},
	}}
}

// informers registers the informers before the cache starts; the
// connectors' informer keeps their Secrets watched.
func (s *state) informers(ctx context.Context) error {
	inf, err := s.cache.GetInformer(ctx, &connectorsv1alpha1.Connector{})
	if err != nil {
		return fmt.Errorf("informer for connectors: %w", err)
	}
	if _, err := inf.AddEventHandler(s.secrets.handler()); err != nil {
		return fmt.Errorf("follow connectors: %w", err)
	}
	if _, err := s.cache.GetInformer(ctx, &connectorsv1alpha1.ConnectorClass{}); err != nil {
		return fmt.Errorf("informer for connector classes: %w", err)
	}
	return nil
}

// class returns the cached class of c, nil when there is none (its
// address extension defaults then do not apply; Usable refuses such a
// connector anyway). It shares its fields with the cache: read only.
func (s *state) class(ctx context.Context, c *connectorsv1alpha1.Connector) *connectorsv1alpha1.ConnectorClass {
	var class connectorsv1alpha1.ConnectorClass
	if err := s.cache.Get(ctx, client.ObjectKey{Name: c.Spec.ConnectorClassName}, &class); err != nil {
		return nil
	}
	return &class
}

// connector returns the cached connector; with CacheOptions it shares its
// fields with the cache, so it is read only.
func (s *state) connector(ctx context.Context, ns, name string) (*connectorsv1alpha1.Connector, error) {
	var c connectorsv1alpha1.Connector
	if err := s.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c); err != nil {
		return nil, fmt.Errorf("connector %s/%s: %w", ns, name, err)
	}
	return &c, nil
}

// secret returns a referenced Secret as it is now (read only).
func (s *state) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return s.secrets.get(ctx, types.NamespacedName{Namespace: ns, Name: name})
}

// trust returns the roots for a connector's upstream and a key that
// changes whenever they do. Pools are built once per key.
func (s *state) trust(ctx context.Context, c *connectorsv1alpha1.Connector) (*x509.CertPool, string, error) {
	var sources []*corev1.Secret
	var version strings.Builder
	for _, sec := range s.secrets.caSecrets() {
		sources = append(sources, sec)
		version.WriteString(sec.Name + "@" + sec.ResourceVersion + ";")
	}
	var own *corev1.Secret
	if ref := c.Spec.CACertSecretRef; ref != nil {
		sec, err := s.secret(ctx, c.Namespace, ref.Name)
		switch {
		case apierrors.IsNotFound(err):
			// As for the reconciler's probes (CACertReady SecretNotFound):
			// nothing added, verification goes on with the other roots.
			version.WriteString(c.Namespace + "/" + ref.Name + "@absent")
		case err != nil:
			return nil, "", fmt.Errorf("caCertSecretRef: %w", err)
		default:
			own = sec
			version.WriteString(c.Namespace + "/" + ref.Name + "@" + sec.ResourceVersion)
		}
	}
	key := version.String()
	if pool, ok := s.pools.Get(key); ok {
		return pool, key, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, sec := range sources {
		connectorsv1alpha1.AppendCABundle(pool, sec)
	}
	// An own CA Secret without PEM adds nothing, as for the reconciler's
	// probes (CACertReady says so): verification goes on with the rest.
	if own != nil {
		connectorsv1alpha1.AppendCABundle(pool, own)
	}
	s.pools.Add(key, pool)
	return pool, key, nil
}
