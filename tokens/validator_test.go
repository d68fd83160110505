//go:build integration

package tokens_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

func TestTokensMintedByTheAPIServerValidate(t *testing.T) {
	ns := namespace(t)
	tok, pod := cp.PodToken(t, ns, "job-1", "runner")
	r := newReplica(t, sharedKey(t), nil, nil)

	id, err := r.Validate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Namespace != ns || id.ServiceAccountName != "runner" || id.PodName != "job-1" || id.PodUID != string(pod.UID) {
		t.Errorf("identity = %+v, want runner of pod job-1 in %s", id, ns)
	}
	if id.ServiceAccountUID == "" {
		t.Error("the ServiceAccount UID is missing from the identity")
	}
	if until := time.Until(id.ExpiresAt); until < 29*time.Minute || until > 31*time.Minute {
		t.Errorf("the token expires in %v, want the default 30m", until)
	}
	if got := r.count("tokenreview", "valid"); got != 1 {
		t.Errorf("TokenReviews = %v, want 1", got)
	}

	again, err := r.Validate(t.Context(), tok)
	if err != nil || again != id {
		t.Fatalf("second validation = %+v, %v; want the cached identity", again, err)
	}
	if r.count("local", "hit") != 1 || r.count("tokenreview", "valid") != 1 {
		t.Errorf("the second validation did not come from the local cache (local hits %v, reviews %v)",
			r.count("local", "hit"), r.count("tokenreview", "valid"))
	}
}

func TestConcurrentLookupsOfOneTokenCollapse(t *testing.T) {
	ns := namespace(t)
	tok, _ := cp.PodToken(t, ns, "job-1", "runner")
	r := newReplica(t, sharedKey(t), nil, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := r.Validate(t.Context(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := r.count("tokenreview", "valid"); got != 1 {
		t.Errorf("20 concurrent lookups made %v TokenReviews, want 1", got)
	}
}

func TestBadTokensAreRejectedWithDistinctErrors(t *testing.T) {
	ns := namespace(t)
	good, pod := cp.PodToken(t, ns, "job-1", "runner")
	otherAudience, _ := cp.RequestToken(t, ns, "runner", testbed.TokenOptions{Audiences: []string{"someone-else"}, BoundPod: pod})
	apiAudience, _ := cp.RequestToken(t, ns, "runner", testbed.TokenOptions{})
	shortLived, _, err := minter(t).MintForPod(t.Context(), tokens.PodRef{Namespace: ns, Name: pod.Name, UID: pod.UID, ServiceAccount: "runner"}, tokens.MinExpiration)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		token tokens.Token
		mod   func(*tokens.Options)
		want  error
	}{
		{name: "a token for another audience is refused", token: tokens.Token(otherAudience), want: tokens.ErrAudience},
		{name: "a token for the API server's own audience is refused", token: tokens.Token(apiAudience), want: tokens.ErrAudience},
		{
			name: "an expired token is refused", token: shortLived, want: tokens.ErrExpired,
			mod: func(o *tokens.Options) {
				o.Now = func() time.Time { return time.Now().Add(tokens.MinExpiration + time.Minute) }
			},
		},
		{
			name: "a token of another issuer is refused", token: good, want: tokens.ErrIssuer,
			mod: func(o *tokens.Options) { o.Issuer = "https://issuer.example.com" },
		},
		{name: "alg none is refused", token: resign(t, good, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), want: tokens.ErrAlgorithm},
		{name: "HS256 keyed with the cluster's public key is refused", token: resign(t, good, jwt.SigningMethodHS256, clusterPublicKeyPEM(t)), want: tokens.ErrAlgorithm},
		{name: "a truncated signature is refused", token: good[:len(good)-4], want: tokens.ErrSignature},
		{name: "a token signed by an unknown key is refused", token: resign(t, good, jwt.SigningMethodES256, newECKey(t)), want: tokens.ErrUnknownKey},
		{name: "a megabyte token is refused before parsing", token: tokens.Token(strings.Repeat("a", 1<<20)), want: tokens.ErrTooLarge},
		{name: "a string that is not a JWT is refused", token: "not-a-jwt", want: tokens.ErrMalformed},
		{name: "three dots of garbage are refused", token: "e30.e30.e30.e30", want: tokens.ErrMalformed},
		{name: "an empty token is refused", token: "", want: tokens.ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReplica(t, sharedKey(t), nil, tt.mod)
			_, err := r.Validate(t.Context(), tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !tokens.IsInvalid(err) {
				t.Errorf("IsInvalid(%v) = false", err)
			}
			if strings.Contains(err.Error(), string(good)) || (len(tt.token) > 20 && strings.Contains(err.Error(), string(tt.token))) {
				t.Error("the error message contains the token")
			}
			if got := r.count("tokenreview", "valid") + r.count("tokenreview", "invalid") + r.count("tokenreview", "error"); got != 0 {
				t.Errorf("the token reached the API server's TokenReview (%v calls); the local check must stop it", got)
			}
		})
	}
}

func TestRejectionsAreCachedBriefly(t *testing.T) {
	clock := newClock()
	r := newReplica(t, sharedKey(t), nil, func(o *tokens.Options) { o.Now = clock.Now })
	token := resign(t, mustToken(t), jwt.SigningMethodES256, newECKey(t))
	for range 3 {
		if _, err := r.Validate(t.Context(), token); !errors.Is(err, tokens.ErrUnknownKey) {
			t.Fatalf("err = %v, want ErrUnknownKey", err)
		}
	}
	if got := r.count("local", "hit"); got != 2 {
		t.Errorf("local hits = %v, want 2 (the rejection is cached)", got)
	}
	clock.Add(6 * time.Second) // past the default NegativeTTL of 5s
	if _, err := r.Validate(t.Context(), token); !errors.Is(err, tokens.ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	if got := r.count("jwt", "invalid"); got != 2 {
		t.Errorf("JWT checks = %v, want 2: the rejection must expire after NegativeTTL", got)
	}
}

func TestACachedResultIsNeverServedPastTheTokensExpiry(t *testing.T) {
	ns := namespace(t)
	pod := cp.CreatePod(t, ns, "job-1", "runner")
	tok, exp, err := minter(t).MintForPod(t.Context(), tokens.PodRef{Namespace: ns, Name: pod.Name, UID: pod.UID, ServiceAccount: "runner"}, tokens.MinExpiration)
	if err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	srv := testbed.StartRedis(t)
	rdb := redisClient(t, srv)
	r := newReplica(t, sharedKey(t), rdb, func(o *tokens.Options) { o.Now, o.MaxTTL = clock.Now, time.Hour })
	if _, err := r.Validate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(t.Context(), "connectors:tokens:t:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("Redis keys %v, %v; want one entry", keys, err)
	}
	ttl := rdb.TTL(t.Context(), keys[0]).Val()
	if want := time.Until(exp); ttl > want+time.Second || ttl < want-5*time.Second {
		t.Errorf("Redis TTL %v, want the token's remaining life %v (MaxTTL is longer)", ttl, want)
	}
	clock.Set(exp.Add(time.Minute)) // past exp and the JWT leeway
	if _, err := r.Validate(t.Context(), tok); !errors.Is(err, tokens.ErrExpired) {
		t.Fatalf("after exp: err = %v, want ErrExpired, not the cached identity", err)
	}
}

// clock is a settable clock for the caches.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func TestADeletedPodsTokenIsRejectedOnEveryReplica(t *testing.T) {
	ns := namespace(t)
	tok, pod := cp.PodToken(t, ns, "job-1", "runner")
	srv := testbed.StartRedis(t)
	key := sharedKey(t)
	a := newReplica(t, key, redisClient(t, srv), nil)
	b := newReplica(t, key, redisClient(t, srv), nil)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, r := range []replica{a, b} {
		wg.Go(func() { _ = r.Start(ctx) })
		if err := r.Subscribed(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	watcher, err := tokens.NewPodWatcher(tokens.PodWatcherOptions{Client: metadata.NewForConfigOrDie(cp.Config), Revoker: a})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = watcher.Start(ctx) })

	for _, r := range []replica{a, b} {
		if _, err := r.Validate(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if b.count("redis", "hit") != 1 {
		t.Errorf("replica b did not find a's result in Redis (redis hits %v)", b.count("redis", "hit"))
	}
	if _, err := b.Validate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}

	if err := cp.Clientset.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := b.Validate(t.Context(), tok)
		if errors.Is(err, tokens.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2s after the pod was deleted replica b still says %v, want ErrRevoked", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := a.Validate(t.Context(), tok); !errors.Is(err, tokens.ErrRevoked) {
		t.Errorf("replica a: err = %v, want ErrRevoked", err)
	}
	rdb := redisClient(t, srv)
	if n, _ := rdb.Keys(t.Context(), "connectors:tokens:pod:"+string(pod.UID)).Result(); len(n) != 0 {
		t.Errorf("the pod's index is still in Redis: %v", n)
	}
	// A replica that was not listening (started later, or reconnecting) must
	// refuse the token too, without asking the API server.
	late := newReplica(t, key, redisClient(t, srv), nil)
	if _, err := late.Validate(t.Context(), tok); !errors.Is(err, tokens.ErrRevoked) {
		t.Errorf("a replica that missed the revocation message: err = %v, want ErrRevoked", err)
	}
	if got := late.count("tokenreview", "valid") + late.count("tokenreview", "invalid"); got != 0 {
		t.Errorf("the late replica asked the API server %v times, want 0", got)
	}
}

func TestRedisOutageFallsBackAndRecovers(t *testing.T) {
	ns := namespace(t)
	srv := testbed.StartRedis(t)
	rdb := redisClient(t, srv)
	r := newReplica(t, sharedKey(t), rdb, nil)
	first, _ := cp.PodToken(t, ns, "job-1", "runner")
	second, _ := cp.PodToken(t, ns, "job-2", "runner")
	third, _ := cp.PodToken(t, ns, "job-3", "runner")

	if _, err := r.Validate(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)

	if _, err := r.Validate(t.Context(), first); err != nil {
		t.Fatalf("a validated token stopped working when Redis went down: %v", err)
	}
	if _, err := r.Validate(t.Context(), second); err != nil {
		t.Fatalf("a new token was not validated through TokenReview while Redis is down: %v", err)
	}
	if got := r.count("tokenreview", "valid"); got != 2 {
		t.Errorf("TokenReviews = %v, want 2", got)
	}
	if up := r.redisUp(t); up != 0 {
		t.Errorf("connectors_token_redis_up = %v while Redis is down, want 0", up)
	}

	srv.Restart(t)
	time.Sleep(100 * time.Millisecond) // past RedisRetry: the next call tries Redis again
	if _, err := r.Validate(t.Context(), third); err != nil {
		t.Fatal(err)
	}
	if up := r.redisUp(t); up != 1 {
		t.Errorf("connectors_token_redis_up = %v after Redis came back, want 1", up)
	}
	keys, err := rdb.Keys(t.Context(), "connectors:tokens:t:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Errorf("Redis holds %d token entries after the restart, want the third token's", len(keys))
	}
}

func TestRedisNeverHoldsTheToken(t *testing.T) {
	ns := namespace(t)
	srv := testbed.StartRedis(t)
	rdb := redisClient(t, srv)
	r := newReplica(t, sharedKey(t), rdb, nil)
	tok, _ := cp.PodToken(t, ns, "job-1", "runner")
	if _, err := r.Validate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	bad := tokens.Token(string(tok[:len(tok)-4]))
	if _, err := r.Validate(t.Context(), bad); err == nil {
		t.Fatal("the truncated token validated")
	}
	signature := string(tok[strings.LastIndex(string(tok), ".")+1:])
	keys, err := rdb.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 2 {
		t.Fatalf("Redis holds %d keys, want the valid and the rejected token's entries", len(keys))
	}
	for _, k := range keys {
		val, _ := rdb.Dump(t.Context(), k).Result()
		for _, secret := range []string{string(tok), string(bad), signature} {
			if strings.Contains(k, secret) || strings.Contains(val, secret) {
				t.Errorf("Redis key %q (or its value) contains the token", k)
			}
		}
	}
}

func TestMinter(t *testing.T) {
	ns := namespace(t)
	pod := cp.CreatePod(t, ns, "job-1", "runner")
	ref := tokens.PodRef{Namespace: ns, Name: pod.Name, UID: pod.UID, ServiceAccount: "runner"}
	tests := []struct {
		name       string
		ref        tokens.PodRef
		expiration time.Duration
		wantErr    string
		wantLife   time.Duration
	}{
		{name: "the default lifetime is 30 minutes", ref: ref, wantLife: 30 * time.Minute},
		{name: "the minimum lifetime of 10 minutes is granted", ref: ref, expiration: 10 * time.Minute, wantLife: 10 * time.Minute},
		{name: "less than 10 minutes is a clear error", ref: ref, expiration: 5 * time.Minute, wantErr: "below the API server's minimum of 10m0s"},
		{name: "a pod without a UID is an error", ref: tokens.PodRef{Namespace: ns, Name: "x", ServiceAccount: "runner"}, wantErr: "needs the pod's name and UID"},
		{
			name: "a UID that is not the pod's is refused by the API server",
			ref:  tokens.PodRef{Namespace: ns, Name: pod.Name, UID: "00000000-0000-0000-0000-000000000000", ServiceAccount: "runner"}, wantErr: "TokenRequest",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, exp, err := minter(t).MintForPod(t.Context(), tt.ref, tt.expiration)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok == "" || time.Until(exp) < tt.wantLife-time.Minute || time.Until(exp) > tt.wantLife+time.Minute {
				t.Errorf("token expires in %v, want %v", time.Until(exp), tt.wantLife)
			}
		})
	}
}

// mustToken returns a valid proxy token of a fresh pod.
func mustToken(t *testing.T) tokens.Token {
	t.Helper()
	tok, _ := cp.PodToken(t, namespace(t), "job-1", "runner")
	return tok
}

// resign signs the claims (and kid) of tok again with another method and key.
func resign(t *testing.T, tok tokens.Token, method jwt.SigningMethod, key any) tokens.Token {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(string(tok), jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	out := jwt.NewWithClaims(method, parsed.Claims)
	out.Header["kid"] = parsed.Header["kid"]
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		out.Header["kid"] = "unknown-key"
	}
	s, err := out.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tokens.Token(s)
}

// clusterPublicKeyPEM returns the PEM of the cluster's first signing key, the
// classic key-confusion secret.
func clusterPublicKeyPEM(t *testing.T) []byte {
	t.Helper()
	ks, err := tokens.NewAPIServerKeySource(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	_, set, err := ks.Fetch(t.Context())
	if err != nil || len(set.Keys) == 0 {
		t.Fatalf("fetch the cluster's keys: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestWithTheAPIServerDownCachedTokensWorkAndNewOnesAreRefused(t *testing.T) {
	ns := namespace(t)
	cached, _ := cp.PodToken(t, ns, "job-1", "runner")
	fresh, _ := cp.PodToken(t, ns, "job-2", "runner")
	srv := testbed.StartRedis(t)
	key := sharedKey(t)
	healthy := newReplica(t, key, redisClient(t, srv), nil)
	if _, err := healthy.Validate(t.Context(), cached); err != nil {
		t.Fatal(err)
	}

	// A replica whose API server is gone: nothing listens on port 1.
	dead := rest.CopyConfig(cp.Config)
	dead.Host = "https://127.0.0.1:1"
	deadClient := kubernetes.NewForConfigOrDie(dead)
	liveKeys, err := tokens.NewAPIServerKeySource(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*tokens.Options){
		"TokenReview unreachable": func(o *tokens.Options) { o.Client, o.Keys, o.Timeout = deadClient, liveKeys, 3*time.Second },
		"JWKS and TokenReview unreachable": func(o *tokens.Options) {
			o.Client, o.RESTConfig, o.Timeout = deadClient, dead, 3*time.Second
		},
	} {
		t.Run(name, func(t *testing.T) {
			cut := newReplica(t, key, redisClient(t, srv), mod)
			if _, err := cut.Validate(t.Context(), cached); err != nil {
				t.Fatalf("a token cached before the outage was refused: %v", err)
			}
			for range 2 { // the second try must not find a cached rejection
				_, err := cut.Validate(t.Context(), fresh)
				if !errors.Is(err, tokens.ErrUnavailable) || tokens.IsInvalid(err) {
					t.Fatalf("err = %v, want ErrUnavailable (and not cached as invalid)", err)
				}
				if !strings.Contains(err.Error(), "cannot be checked now") {
					t.Errorf("message %q does not say the token cannot be checked now", err)
				}
			}
		})
	}
}

func TestForgedRedisEntriesAreIgnored(t *testing.T) {
	ns := namespace(t)
	tok, _ := cp.PodToken(t, ns, "job-1", "runner")
	srv := testbed.StartRedis(t)
	rdb := redisClient(t, srv)
	key := sharedKey(t)
	if _, err := newReplica(t, key, rdb, nil).Validate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(t.Context(), "connectors:tokens:t:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("Redis keys %v, %v; want one entry", keys, err)
	}
	stored := rdb.Get(t.Context(), keys[0]).Val()
	forged := strings.Replace(stored, `"serviceAccountName":"runner"`, `"serviceAccountName":"cluster-admin"`, 1)
	if forged == stored {
		t.Fatalf("the stored value %q has no serviceAccountName to forge", stored)
	}
	if err := rdb.Set(t.Context(), keys[0], forged, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	other := newReplica(t, key, rdb, nil)
	id, err := other.Validate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.ServiceAccountName != "runner" || other.count("redis", "hit") != 0 {
		t.Errorf("identity %+v with %v Redis hits: the forged entry was trusted", id, other.count("redis", "hit"))
	}
}
