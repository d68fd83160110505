package tokens

import (
	"context"
	"errors"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// AuthorizerOptions configure an Authorizer.
type AuthorizerOptions struct {
	// Client creates SubjectAccessReviews. Required.
	Client kubernetes.Interface
	// RequireSAR asks the API server also for identities of the connector's
	// own namespace (by default those are allowed outright).
	RequireSAR bool
	// CacheSize bounds the decision cache (entries). Default 10000.
	CacheSize int
	// AllowTTL is how long an allow is cached. Default 30s.
	AllowTTL time.Duration
	// DenyTTL is how long a deny is cached. Default 5s.
	DenyTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Shared, when set, shares its Redis tier (if it has one): a decision
	// one replica got from the API server serves the others, sealed with
	// the shared key like the token entries. Redis being away only costs
	// SubjectAccessReviews.
	Shared *Pipeline
	// Registerer receives the metrics; nil means none are registered.
	Registerer prometheus.Registerer
}

// Authorizer decides whether an identity may use a connector: identities of
// the connector's namespace may; others need RBAC `get` on the connector
// (a SubjectAccessReview).
type Authorizer struct {
	opts      AuthorizerOptions
	cache     *lru.Cache[string, decision]
	shared    *sharedCache // nil: decisions stay in this process
	keyer     *keyer       // Redis keys of decisions
	decisions *prometheus.CounterVec
}

type decision struct {
	err     error
	expires time.Time
}

// NewAuthorizer checks opts and fills defaults.
func NewAuthorizer(opts AuthorizerOptions) (*Authorizer, error) {
	if opts.Client == nil {
		return nil, errors.New("tokens: AuthorizerOptions.Client is required")
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.AllowTTL <= 0 {
		opts.AllowTTL = 30 * time.Second
	}
	if opts.DenyTTL <= 0 {
		opts.DenyTTL = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c, err := lru.New[string, decision](opts.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("tokens: authorizer cache: %w", err)
	}
	a := &Authorizer{opts: opts, cache: c, decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectors_authz_decisions_total",
		Help: "Connector authorization decisions by result (allowed, denied, error) and source (namespace, cache, redis, sar).",
	}, []string{"result", "source"})}
	if opts.Shared != nil && opts.Shared.shared != nil {
		a.shared, a.keyer = opts.Shared.shared, opts.Shared.keyer
	}
	if err := register(opts.Registerer, a.decisions); err != nil {
		return nil, err
	}
	return a, nil
}

// Authorize returns nil when id may use the connector namespace/name, an
// error wrapping ErrForbidden when it may not, and one wrapping
// ErrUnavailable when the API server could not be asked.
func (a *Authorizer) Authorize(ctx context.Context, id Identity, namespace, name string) error {
	if id.Namespace == namespace && !a.opts.RequireSAR {
		a.decisions.WithLabelValues("allowed", "namespace").Inc()
		return nil
	}
	key := id.Username() + "\x00" + id.ServiceAccountUID + "\x00" + namespace + "\x00" + name
	now := a.opts.Now()
	if d, ok := a.cache.Get(key); ok && now.Before(d.expires) {
		a.decisions.WithLabelValues(resultOf(d.err), "cache").Inc()
		return d.err
	}
	var sharedKey cacheKey
	if a.shared != nil {
		sharedKey = a.keyer.key(Token("authz\x00" + key))
		if e, ok := a.shared.getDecision(ctx, sharedKey); ok {
			d := decision{expires: e.Until}
			if !e.Allowed {
				d.err = fmt.Errorf("%w: %s", ErrForbidden, e.Message)
			}
			a.cache.Add(key, d)
			a.decisions.WithLabelValues(resultOf(d.err), "redis").Inc()
			return d.err
		}
	}
	err := a.review(ctx, id, namespace, name)
	a.decisions.WithLabelValues(resultOf(err), "sar").Inc()
	var d decision
	switch {
	case err == nil:
		d = decision{expires: now.Add(a.opts.AllowTTL)}
	case errors.Is(err, ErrForbidden):
		d = decision{err: err, expires: now.Add(a.opts.DenyTTL)}
	default:
		return err // not a decision: asked again next time
	}
	a.cache.Add(key, d)
	if a.shared != nil {
		e := decisionEntry{Allowed: d.err == nil, Until: d.expires}
		if d.err != nil {
			e.Message = denialReason(id, namespace, name)
		}
		a.shared.putDecision(ctx, sharedKey, e)
	}
	return err
}

func (a *Authorizer) review(ctx context.Context, id Identity, namespace, name string) error {
	sar := id.AccessReview(&authorizationv1.ResourceAttributes{
		Namespace: namespace,
		Verb:      "get",
		Group:     connectorsv1alpha1.Group,
		Resource:  "connectors",
		Name:      name,
	})
	resp, err := a.opts.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("%w: SubjectAccessReview: %w", ErrUnavailable, err)
	}
	if !resp.Status.Allowed {
		return fmt.Errorf("%w: %s", ErrForbidden, denialReason(id, namespace, name))
	}
	return nil
}

// AccessReview is the SubjectAccessReview that asks whether the identity
// (its user, groups, UID and, for a pod-bound token, the pod) may do what
// attrs say.
func (id Identity) AccessReview(attrs *authorizationv1.ResourceAttributes) *authorizationv1.SubjectAccessReview {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               id.Username(),
		Groups:             id.Groups(),
		UID:                id.ServiceAccountUID,
		ResourceAttributes: attrs,
	}}
	if id.PodName != "" {
		sar.Spec.Extra = map[string]authorizationv1.ExtraValue{
			extraPodName: {id.PodName}, extraPodUID: {id.PodUID},
		}
	}
	return sar
}

func denialReason(id Identity, namespace, name string) string {
	return fmt.Sprintf("serviceaccount %s/%s may not get connector %s/%s (grant it with a Role and RoleBinding in %s)",
		id.Namespace, id.ServiceAccountName, namespace, name, namespace)
}

func resultOf(err error) string {
	switch {
	case err == nil:
		return "allowed"
	case errors.Is(err, ErrForbidden):
		return "denied"
	default:
		return "error"
	}
}
