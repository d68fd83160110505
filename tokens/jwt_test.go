package tokens_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/connectors-io/connectors/tokens"
)

func newECKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func newRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// jwksServer is a local OIDC discovery + JWKS endpoint with test keys.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int64
}

func newJWKSServer(tb testing.TB) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "https://issuer.test", "jwks_uri": "https://issuer.test/openid/v1/jwks"})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: s.keys})
	})
	s.Server = httptest.NewServer(mux)
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) add(kid, alg string, pub crypto.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"})
}

func (s *jwksServer) verifier(tb testing.TB, now func() time.Time) *tokens.JWTVerifier {
	tb.Helper()
	v, err := tokens.NewJWTVerifier(tokens.JWTOptions{
		Keys: &tokens.HTTPKeySource{Client: s.Client(), BaseURL: s.URL}, Now: now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// sign makes a ServiceAccount-shaped token.
func sign(tb testing.TB, method jwt.SigningMethod, kid string, key any, mutate func(jwt.MapClaims)) tokens.Token {
	tb.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": "https://issuer.test", "aud": []string{tokens.DefaultAudience},
		"sub": "system:serviceaccount:team-a:builder",
		"exp": now.Add(30 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "team-a",
			"serviceaccount": map[string]string{"name": "builder", "uid": "sa-uid"},
			"pod":            map[string]string{"name": "job-1", "uid": "pod-uid"},
		},
	}
	if mutate != nil {
		mutate(claims)
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return tokens.Token(s)
}

func TestJWTVerifier(t *testing.T) {
	rsaKey, ecKey, ec384 := newRSAKey(t), newECKey(t), func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}()
	srv := newJWKSServer(t)
	srv.add("rsa", "RS256", rsaKey.Public())
	srv.add("ec", "ES256", ecKey.Public())
	srv.add("ec384", "ES384", ec384.Public())

	tests := []struct {
		name  string
		token tokens.Token
		want  error
	}{
		{name: "an RS256 token from the local JWKS is accepted", token: sign(t, jwt.SigningMethodRS256, "rsa", rsaKey, nil)},
		{name: "an ES256 token is accepted", token: sign(t, jwt.SigningMethodES256, "ec", ecKey, nil)},
		{name: "an ES384 token is accepted", token: sign(t, jwt.SigningMethodES384, "ec384", ec384, nil)},
		{name: "RS512 is not an allowed algorithm", token: sign(t, jwt.SigningMethodRS512, "rsa", rsaKey, nil), want: tokens.ErrAlgorithm},
		{name: "a signature by another key under a known key ID fails", token: sign(t, jwt.SigningMethodES256, "ec", newECKey(t), nil), want: tokens.ErrSignature},
		{
			name:  "a token without exp is refused",
			token: sign(t, jwt.SigningMethodES256, "ec", ecKey, func(c jwt.MapClaims) { delete(c, "exp") }), want: tokens.ErrExpired,
		},
		{
			name:  "a token not valid yet is refused",
			token: sign(t, jwt.SigningMethodES256, "ec", ecKey, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), want: tokens.ErrExpired,
		},
		{
			name:  "a token without the kubernetes.io claims is not a ServiceAccount token",
			token: sign(t, jwt.SigningMethodES256, "ec", ecKey, func(c jwt.MapClaims) { delete(c, "kubernetes.io") }), want: tokens.ErrNotServiceAccount,
		},
		{
			name:  "a subject that contradicts the kubernetes.io claims is refused",
			token: sign(t, jwt.SigningMethodES256, "ec", ecKey, func(c jwt.MapClaims) { c["sub"] = "system:serviceaccount:kube-system:admin" }), want: tokens.ErrNotServiceAccount,
		},
		{
			name:  "a token without an issuer is refused",
			token: sign(t, jwt.SigningMethodES256, "ec", ecKey, func(c jwt.MapClaims) { delete(c, "iss") }), want: tokens.ErrIssuer,
		},
	}
	v := srv.verifier(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(t.Context(), tt.token)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Namespace != "team-a" || id.ServiceAccountName != "builder" || id.PodUID != "pod-uid" || id.ServiceAccountUID != "sa-uid" {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

func TestJWTVerifierPicksUpRotatedKeysAtMostOncePerInterval(t *testing.T) {
	srv := newJWKSServer(t)
	old := newECKey(t)
	srv.add("old", "ES256", old.Public())
	now := time.Now()
	clock := func() time.Time { return now }
	v := srv.verifier(t, clock)
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, "old", old, nil)); err != nil {
		t.Fatal(err)
	}
	rotated := newECKey(t)
	srv.add("new", "ES256", rotated.Public())
	fetches := srv.fetches.Load()
	for range 5 {
		if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, "new", rotated, nil)); !errors.Is(err, tokens.ErrUnknownKey) {
			t.Fatalf("err = %v, want ErrUnknownKey inside the refresh interval", err)
		}
	}
	if got := srv.fetches.Load() - fetches; got != 0 {
		t.Errorf("%d JWKS fetches inside the refresh interval, want 0", got)
	}
	now = now.Add(11 * time.Second)
	if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, "new", rotated, nil)); err != nil {
		t.Fatalf("the rotated key was not picked up after the interval: %v", err)
	}
	if got := srv.fetches.Load() - fetches; got != 1 {
		t.Errorf("%d JWKS fetches to pick up the rotated key, want 1", got)
	}
}

func BenchmarkJWTVerify(b *testing.B) {
	srv := newJWKSServer(b)
	rsaKey, ecKey := newRSAKey(b), newECKey(b)
	srv.add("rsa", "RS256", rsaKey.Public())
	srv.add("ec", "ES256", ecKey.Public())
	v := srv.verifier(b, nil)
	for _, bc := range []struct {
		name  string
		token tokens.Token
	}{
		{"RS256", sign(b, jwt.SigningMethodRS256, "rsa", rsaKey, nil)},
		{"ES256", sign(b, jwt.SigningMethodES256, "ec", ecKey, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, bc.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
