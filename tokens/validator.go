package tokens

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Validator says whose a token is. It is the one interface the gateway,
// the CSI driver and the control API depend on.
type Validator interface {
	// Validate returns the identity of a valid token, or an error: test it
	// with errors.Is against the package's errors; IsInvalid tells a bad
	// token from one that cannot be checked right now (ErrUnavailable).
	Validate(ctx context.Context, token Token) (Identity, error)
}

// Options configure a Pipeline.
type Options struct {
	// Client creates TokenReviews. Required.
	Client kubernetes.Interface
	// Keys supplies the signing keys for the local JWT check. Default: the
	// API server of RESTConfig.
	Keys KeySource
	// RESTConfig is used for the default Keys. Required when Keys is nil.
	RESTConfig *rest.Config
	// Issuer overrides the issuer from OIDC discovery.
	Issuer string
	// Audiences accepted. Default: DefaultAudience.
	Audiences []string
	// SharedKey is the HMAC key of cache keys, the same on every replica (a
	// Secret). At least 32 bytes. Required.
	SharedKey []byte
	// Redis is the shared cache; nil means the in-process cache only.
	Redis redis.UniversalClient
	// RedisPrefix starts every key and the revocation channel. Default
	// "connectors:tokens:".
	RedisPrefix string
	// LocalCacheSize bounds the in-process LRU (entries). Default 10000.
	LocalCacheSize int
	// MaxTTL bounds how long a valid result is cached (never past the
	// token's exp). Default 5m.
	MaxTTL time.Duration
	// NegativeTTL is how long a rejection is cached. Default 5s.
	NegativeTTL time.Duration
	// RedisRetry is how often an unreachable Redis is tried again. Default 1s.
	RedisRetry time.Duration
	// MaxTokenBytes rejects longer tokens before any parsing. Default 16 KiB.
	MaxTokenBytes int
	// Timeout bounds the work of one uncached validation. Default 10s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives state transitions (never tokens). Default: discard.
	Logger logr.Logger
	// Registerer receives the metrics; nil means none are registered.
	Registerer prometheus.Registerer
}

// Pipeline is the standard Validator: in-process LRU → Redis → local JWT
// check → TokenReview, each result cached in the tiers above it. It also
// revokes the tokens of deleted pods (Revoke) and, with Redis, hears the
// revocations of other replicas (Start).
type Pipeline struct {
	opts    Options
	keyer   *keyer
	local   *localCache
	shared  *sharedCache // nil without Redis
	jwt     *JWTVerifier
	review  *Reviewer
	flight  singleflight.Group
	metrics *metrics

	subscribed     chan struct{} // closed once Start listens for revocations
	subscribedOnce sync.Once
}

var _ Validator = (*Pipeline)(nil)

// New checks opts, fills defaults and builds the pipeline.
func New(opts Options) (*Pipeline, error) {
	if opts.Client == nil {
		return nil, errors.New("tokens: Options.Client is required")
	}
	if len(opts.SharedKey) < 32 {
		return nil, errors.New("tokens: Options.SharedKey must hold at least 32 bytes")
	}
	if len(opts.Audiences) == 0 {
		opts.Audiences = []string{DefaultAudience}
	}
	if opts.RedisPrefix == "" {
		opts.RedisPrefix = "connectors:tokens:"
	}
	if opts.LocalCacheSize <= 0 {
		opts.LocalCacheSize = 10000
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = 5 * time.Minute
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 5 * time.Second
	}
	if opts.RedisRetry <= 0 {
		opts.RedisRetry = time.Second
	}
	if opts.MaxTokenBytes <= 0 {
		opts.MaxTokenBytes = 16 << 10
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Keys == nil {
		if opts.RESTConfig == nil {
			return nil, errors.New("tokens: Options.Keys or Options.RESTConfig is required")
		}
		ks, err := NewAPIServerKeySource(opts.RESTConfig)
		if err != nil {
			return nil, err
		}
		opts.Keys = ks
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	jwtv, err := NewJWTVerifier(JWTOptions{Keys: opts.Keys, Issuer: opts.Issuer, Audiences: opts.Audiences, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	review, err := NewReviewer(opts.Client, opts.Audiences)
	if err != nil {
		return nil, err
	}
	review.observe = m.observeReview
	p := &Pipeline{
		opts: opts, keyer: newKeyer(opts.SharedKey), local: newLocalCache(opts.LocalCacheSize),
		jwt: jwtv, review: review, metrics: m, subscribed: make(chan struct{}),
	}
	if opts.Redis != nil {
		p.shared = &sharedCache{
			client: opts.Redis, prefix: opts.RedisPrefix, log: opts.Logger, now: opts.Now,
			secret: append([]byte(nil), opts.SharedKey...), maxTTL: opts.MaxTTL,
			retry: opts.RedisRetry, onErr: m.redisErrors.Inc,
			onUp: func(up bool) {
				m.setRedisUp(up)
				if up {
					// Revocations may have been missed while Redis was away.
					p.local.purge()
				}
			},
		}
		p.shared.up.Store(true)
		m.setRedisUp(true)
	}
	return p, nil
}

// Validate implements Validator.
func (p *Pipeline) Validate(ctx context.Context, token Token) (Identity, error) {
	switch {
	case token == "":
		return Identity{}, ErrEmpty
	case len(token) > p.opts.MaxTokenBytes:
		p.metrics.lookup("guard", "invalid")
		return Identity{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(token), p.opts.MaxTokenBytes)
	}
	k := p.keyer.key(token)
	if r, ok := p.local.get(k, p.opts.Now()); ok {
		p.metrics.lookup("local", "hit")
		return r.id, r.err
	}
	p.metrics.lookup("local", "miss")
	ch := p.flight.DoChan(string(k[:]), func() (any, error) {
		// Shared by every concurrent caller of the same token: it must not
		// die with the first caller's context.
		work, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.Timeout)
		defer cancel()
		r := p.validateUncached(work, k, token)
		return r, nil
	})
	select {
	case <-ctx.Done():
		return Identity{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	case res := <-ch:
		r := res.Val.(result)
		return r.id, r.err
	}
}

// validateUncached runs Redis → JWT → TokenReview and caches the outcome.
func (p *Pipeline) validateUncached(ctx context.Context, k cacheKey, token Token) result {
	if p.shared != nil {
		if r, ok := p.shared.get(ctx, k); ok {
			if r.err == nil && r.id.PodUID != "" && p.local.isRevoked(r.id.PodUID, p.opts.Now()) {
				r = result{err: fmt.Errorf("%w: pod %s", ErrRevoked, r.id.PodName)}
			}
			if errors.Is(r.err, ErrRevoked) {
				p.metrics.lookup("redis", "revoked")
				return p.reject(ctx, k, r.err)
			}
			p.metrics.lookup("redis", "hit")
			p.local.put(k, r)
			return r
		}
		p.metrics.lookup("redis", "miss")
	}
	claimed, err := p.jwt.Verify(ctx, token)
	if err != nil {
		p.metrics.lookup("jwt", outcome(err))
		return p.reject(ctx, k, err)
	}
	p.metrics.lookup("jwt", "valid")
	if claimed.PodUID != "" && p.revoked(ctx, claimed.PodUID) {
		return p.reject(ctx, k, fmt.Errorf("%w: pod %s", ErrRevoked, claimed.PodName))
	}
	reviewed, err := p.review.Review(ctx, token)
	if err != nil {
		p.metrics.lookup("tokenreview", outcome(err))
		return p.reject(ctx, k, err)
	}
	if reviewed.Namespace != claimed.Namespace || reviewed.ServiceAccountName != claimed.ServiceAccountName ||
		reviewed.PodUID != claimed.PodUID {
		p.metrics.lookup("tokenreview", "invalid")
		return p.reject(ctx, k, fmt.Errorf("%w: the API server's identity differs from the token's claims", ErrRejected))
	}
	p.metrics.lookup("tokenreview", "valid")
	until := p.opts.Now().Add(p.opts.MaxTTL)
	if claimed.ExpiresAt.Before(until) {
		until = claimed.ExpiresAt
	}
	r := result{id: claimed, expires: until}
	if p.shared != nil && p.shared.put(ctx, k, r) {
		return p.reject(ctx, k, fmt.Errorf("%w: pod %s", ErrRevoked, claimed.PodName))
	}
	if claimed.PodUID != "" && p.local.isRevoked(claimed.PodUID, p.opts.Now()) {
		return p.reject(ctx, k, fmt.Errorf("%w: pod %s", ErrRevoked, claimed.PodName))
	}
	p.local.put(k, r)
	return r
}

// reject returns err as a result, cached briefly when it is a definitive
// rejection (never when the token could not be checked).
func (p *Pipeline) reject(ctx context.Context, k cacheKey, err error) result {
	r := result{err: err, expires: p.opts.Now().Add(p.opts.NegativeTTL)}
	if !IsInvalid(err) {
		return r
	}
	p.local.put(k, r)
	if p.shared != nil {
		p.shared.put(ctx, k, r)
	}
	return r
}

func (p *Pipeline) revoked(ctx context.Context, podUID string) bool {
	if p.local.isRevoked(podUID, p.opts.Now()) {
		return true
	}
	return p.shared != nil && p.shared.isRevoked(ctx, podUID)
}

func outcome(err error) string {
	if IsInvalid(err) {
		return "invalid"
	}
	return "error"
}
