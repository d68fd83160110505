package gateway

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// CACertLabel marks the CA Secrets of the install namespace that every
// connector's upstream trusts.
const CACertLabel = "connectors.cpaas.io/ca-cert"

// state reads connectors and classes from informers and Secret data from
// the API server, once per resourceVersion (the informer watches Secret
// metadata only).
type state struct {
	cache     cache.Cache
	reader    client.Reader // uncached: Secret data
	namespace string        // install namespace: labelled CA Secrets
	secrets   *lru.Cache[types.NamespacedName, *corev1.Secret]
	pools     *lru.Cache[string, *x509.CertPool] // by trust version
}

func newState(c cache.Cache, reader client.Reader, namespace string, size int) *state {
	// lru.New fails only for a size <= 0, which the options exclude.
	s, _ := lru.New[types.NamespacedName, *corev1.Secret](size)
	p, _ := lru.New[string, *x509.CertPool](size)
	return &state{cache: c, reader: reader, namespace: namespace, secrets: s, pools: p}
}

// CacheOptions returns the options of the cache to pass as Options.Cache:
// Connectors and Secret metadata are read on every request and never
// modified, so reads skip the deep copy.
func CacheOptions(scheme *runtime.Scheme) cache.Options {
	shared := ptr.To(true)
	return cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&connectorsv1alpha1.Connector{}: {UnsafeDisableDeepCopy: shared},
		secretMeta():                    {UnsafeDisableDeepCopy: shared},
	}}
}

func secretMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

func secretMetaList() *metav1.PartialObjectMetadataList {
	m := &metav1.PartialObjectMetadataList{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	return m
}

// informers registers the informers before the cache starts.
func (s *state) informers(ctx context.Context) error {
	for _, obj := range []client.Object{&connectorsv1alpha1.Connector{}, &connectorsv1alpha1.ConnectorClass{}, secretMeta()} {
		if _, err := s.cache.GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
	}
	return nil
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

// secret returns the Secret's current data: the informer says which
// resourceVersion is current, and each version is read once.
func (s *state) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	meta := secretMeta()
	if err := s.cache.Get(ctx, key, meta); err != nil {
		return nil, fmt.Errorf("secret %s: %w", key, err)
	}
	if cached, ok := s.secrets.Get(key); ok && cached.ResourceVersion == meta.ResourceVersion {
		return cached, nil
	}
	var sec corev1.Secret
	if err := s.reader.Get(ctx, key, &sec); err != nil {
		return nil, fmt.Errorf("secret %s: %w", key, err)
	}
	s.secrets.Add(key, &sec)
	return &sec, nil
}

// trust returns the roots for a connector's upstream and a key that
// changes whenever they do. Pools are built once per key.
func (s *state) trust(ctx context.Context, c *connectorsv1alpha1.Connector) (*x509.CertPool, string, error) {
	var sources []*corev1.Secret
	var version strings.Builder
	if s.namespace != "" {
		list := secretMetaList()
		if err := s.cache.List(ctx, list, client.InNamespace(s.namespace), client.MatchingLabels{CACertLabel: "true"}); err != nil {
			return nil, "", fmt.Errorf("list CA Secrets: %w", err)
		}
		for _, m := range list.Items {
			sec, err := s.secret(ctx, m.Namespace, m.Name)
			if err != nil {
				continue // deleted meanwhile
			}
			sources = append(sources, sec)
			version.WriteString(m.Name + "@" + sec.ResourceVersion + ";")
		}
	}
	var own *corev1.Secret
	if ref := c.Spec.CACertSecretRef; ref != nil {
		sec, err := s.secret(ctx, c.Namespace, ref.Name)
		if err != nil {
			return nil, "", fmt.Errorf("caCertSecretRef: %w", err)
		}
		own = sec
		version.WriteString(c.Namespace + "/" + ref.Name + "@" + sec.ResourceVersion)
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
		appendCA(pool, sec)
	}
	if own != nil && !appendCA(pool, own) {
		return nil, "", fmt.Errorf("caCertSecretRef %s/%s holds no PEM certificate", own.Namespace, own.Name)
	}
	s.pools.Add(key, pool)
	return pool, key, nil
}

func appendCA(pool *x509.CertPool, s *corev1.Secret) bool {
	ok := false
	for _, k := range []string{"ca.crt", "ca-bundle.crt", "tls.crt"} {
		if pem, found := s.Data[k]; found && pool.AppendCertsFromPEM(pem) {
			ok = true
		}
	}
	return ok
}
