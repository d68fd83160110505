package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
)

// AllowedAlgorithms are the signing algorithms the JWT check accepts. The
// API server signs with RS256 or ES256 (or ES384); anything else, "none" and
// HMAC above all, is refused before a key is looked at.
var allowedAlgorithms = []string{"RS256", "ES256", "ES384"}

// AllowedAlgorithms returns the signing algorithms the JWT check accepts.
func AllowedAlgorithms() []string { return slices.Clone(allowedAlgorithms) }

// JWTOptions configure a JWTVerifier.
type JWTOptions struct {
	// Keys supplies the issuer and the signing keys. Required.
	Keys KeySource
	// Issuer overrides the issuer named by Keys' discovery document.
	Issuer string
	// Audiences are the accepted audiences; the token must name one of them.
	// Default: connectors-proxy.
	Audiences []string
	// Leeway tolerates clock skew on exp, nbf and iat. Default 5s.
	Leeway time.Duration
	// RefreshInterval is the least time between two key refreshes caused by
	// an unknown key ID. Default 10s.
	RefreshInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// JWTVerifier checks a token's signature and claims locally, with the
// cluster's published keys, so that garbage never reaches the API server.
type JWTVerifier struct {
	opts JWTOptions

	mu        sync.RWMutex
	lastErr   error // of the last fetch, kept while no keys are known
	issuer    string
	keys      map[string][]jose.JSONWebKey // by key ID
	all       []jose.JSONWebKey
	fetchedAt time.Time
	refresh   singleflight.Group
}

// NewJWTVerifier checks opts and fills defaults. Keys are fetched on first use.
func NewJWTVerifier(opts JWTOptions) (*JWTVerifier, error) {
	if opts.Keys == nil {
		return nil, errors.New("tokens: JWTOptions.Keys is required")
	}
	if len(opts.Audiences) == 0 {
		opts.Audiences = []string{DefaultAudience}
	}
	if opts.Leeway == 0 {
		opts.Leeway = 5 * time.Second
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &JWTVerifier{opts: opts}, nil
}

// k8sClaims are the claims of a Kubernetes ServiceAccount token.
type k8sClaims struct {
	jwt.RegisteredClaims
	Kubernetes *struct {
		Namespace      string     `json:"namespace"`
		ServiceAccount *objectRef `json:"serviceaccount"`
		Pod            *objectRef `json:"pod"`
	} `json:"kubernetes.io"`
}

type objectRef struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// Verify checks the token and returns the identity of its verified claims.
func (v *JWTVerifier) Verify(ctx context.Context, token Token) (Identity, error) {
	issuer, err := v.currentIssuer(ctx)
	if err != nil {
		return Identity{}, err
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(allowedAlgorithms),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(v.opts.Audiences...),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.opts.Leeway),
		jwt.WithTimeFunc(v.opts.Now),
	)
	var claims k8sClaims
	parsed, err := parser.ParseWithClaims(string(token), &claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return Identity{}, classifyJWTError(parsed, err)
	}
	return identityFromClaims(&claims)
}

func identityFromClaims(c *k8sClaims) (Identity, error) {
	k := c.Kubernetes
	if k == nil || k.Namespace == "" || k.ServiceAccount == nil || k.ServiceAccount.Name == "" {
		return Identity{}, fmt.Errorf("%w: no kubernetes.io namespace and serviceaccount claims", ErrNotServiceAccount)
	}
	if ns, name, ok := parseServiceAccountUsername(c.Subject); !ok || ns != k.Namespace || name != k.ServiceAccount.Name {
		return Identity{}, fmt.Errorf("%w: subject does not match the kubernetes.io claims", ErrNotServiceAccount)
	}
	id := Identity{
		Namespace:          k.Namespace,
		ServiceAccountName: k.ServiceAccount.Name,
		ServiceAccountUID:  k.ServiceAccount.UID,
		ExpiresAt:          c.ExpiresAt.Time,
	}
	if k.Pod != nil {
		id.PodName, id.PodUID = k.Pod.Name, k.Pod.UID
	}
	return id, nil
}

// classifyJWTError maps golang-jwt's errors onto the package's.
func classifyJWTError(parsed *jwt.Token, err error) error {
	var ours error
	switch {
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrAlgorithm):
		return err
	case errors.Is(err, jwt.ErrTokenMalformed):
		ours = ErrMalformed
	case parsed != nil && !slices.Contains(allowedAlgorithms, headerAlg(parsed)):
		return fmt.Errorf("%w: %q", ErrAlgorithm, headerAlg(parsed))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		ours = ErrSignature
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		ours = ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		ours = ErrAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// golang-jwt names the missing claim only in its message.
		switch msg := err.Error(); {
		case strings.Contains(msg, "iss claim"):
			ours = ErrIssuer
		case strings.Contains(msg, "aud claim"):
			ours = ErrAudience
		default:
			ours = ErrExpired
		}
	case errors.Is(err, jwt.ErrTokenExpired):
		ours = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Errorf("%w: not valid yet", ErrExpired)
	default:
		ours = ErrMalformed
	}
	// golang-jwt's messages name claims and algorithms, never the token.
	return fmt.Errorf("%w: %s", ours, jwtReason(err))
}

func jwtReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

func headerAlg(t *jwt.Token) string {
	alg, _ := t.Header["alg"].(string)
	return alg
}

// keyFor returns the verification key(s) for the token's key ID, refreshing
// the key set (rate limited) when the ID is unknown.
func (v *JWTVerifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	if alg := headerAlg(t); !slices.Contains(allowedAlgorithms, alg) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	kid, _ := t.Header["kid"].(string)
	if keys, ok := v.lookup(kid); ok {
		return keys, nil
	}
	if err := v.maybeRefresh(ctx); err != nil {
		return nil, err
	}
	if keys, ok := v.lookup(kid); ok {
		return keys, nil
	}
	if err := v.unavailable(); err != nil {
		return nil, err // no key known at all: cannot judge the token
	}
	return nil, fmt.Errorf("%w: key ID %q is not in the cluster's JWKS", ErrUnknownKey, kid)
}

// unavailable returns ErrUnavailable while no key set has been fetched.
func (v *JWTVerifier) unavailable() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if len(v.all) > 0 {
		return nil
	}
	if v.lastErr != nil {
		return fmt.Errorf("%w: fetch the cluster's signing keys: %w", ErrUnavailable, v.lastErr)
	}
	return fmt.Errorf("%w: the cluster publishes no signing keys", ErrUnavailable)
}

func (v *JWTVerifier) lookup(kid string) (jwt.VerificationKeySet, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	src := v.all
	if kid != "" {
		src = v.keys[kid]
	}
	if len(src) == 0 {
		return jwt.VerificationKeySet{}, false
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(src))}
	for _, k := range src {
		set.Keys = append(set.Keys, k.Key)
	}
	return set, true
}

func (v *JWTVerifier) currentIssuer(ctx context.Context) (string, error) {
	if v.opts.Issuer != "" {
		return v.opts.Issuer, nil
	}
	v.mu.RLock()
	iss := v.issuer
	v.mu.RUnlock()
	if iss != "" {
		return iss, nil
	}
	if err := v.maybeRefresh(ctx); err != nil {
		return "", err
	}
	v.mu.RLock()
	iss = v.issuer
	v.mu.RUnlock()
	if iss == "" {
		// An empty issuer would switch golang-jwt's issuer check off.
		if err := v.unavailable(); err != nil {
			return "", err
		}
		return "", fmt.Errorf("%w: OIDC discovery named no issuer", ErrUnavailable)
	}
	return iss, nil
}

// maybeRefresh refetches the key set unless that happened less than
// RefreshInterval ago. Concurrent callers share one fetch.
func (v *JWTVerifier) maybeRefresh(ctx context.Context) error {
	v.mu.RLock()
	fresh := !v.fetchedAt.IsZero() && v.opts.Now().Sub(v.fetchedAt) < v.opts.RefreshInterval
	v.mu.RUnlock()
	if fresh {
		return nil
	}
	_, err, _ := v.refresh.Do("", func() (any, error) {
		// The fetch outlives a caller that gives up: others may be waiting.
		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		issuer, set, err := v.opts.Keys.Fetch(fetchCtx)
		if err == nil && (issuer == "" || set == nil) {
			err = errors.New("the key source returned no issuer or no key set")
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		// Failures count too: a broken key source is not asked more often.
		v.fetchedAt = v.opts.Now()
		if err != nil {
			v.lastErr = err
			return nil, err
		}
		v.lastErr = nil
		v.issuer = issuer
		v.keys = make(map[string][]jose.JSONWebKey, len(set.Keys))
		v.all = v.all[:0:0]
		for _, k := range set.Keys {
			if !k.Valid() || !k.IsPublic() {
				continue
			}
			v.keys[k.KeyID] = append(v.keys[k.KeyID], k)
			v.all = append(v.all, k)
		}
		return nil, nil
	})
	if err != nil {
		return v.unavailable() // nil while the keys we have keep working
	}
	return nil
}
