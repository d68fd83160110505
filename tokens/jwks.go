package tokens

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/go-jose/go-jose/v4"
	"k8s.io/client-go/rest"
)

// KeySource fetches the issuer and the public keys that sign tokens.
type KeySource interface {
	// Fetch returns the issuer named by OIDC discovery and the current JWKS.
	Fetch(ctx context.Context) (issuer string, keys *jose.JSONWebKeySet, err error)
}

// maxDiscoveryBytes bounds the discovery document and the JWKS.
const maxDiscoveryBytes = 1 << 20

// HTTPKeySource reads OIDC discovery at BaseURL/.well-known/openid-configuration
// and the JWKS at the path of its jwks_uri on the same BaseURL: the API server
// serves both, also when the advertised issuer is a public URL.
type HTTPKeySource struct {
	// Client sends the requests, with the component's own credentials.
	Client *http.Client
	// BaseURL is the API server's URL, for example https://10.0.0.1:6443.
	BaseURL string
}

// NewAPIServerKeySource returns a KeySource that asks the API server of cfg
// with cfg's credentials.
func NewAPIServerKeySource(cfg *rest.Config) (*HTTPKeySource, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("http client for the API server: %w", err)
	}
	return &HTTPKeySource{Client: client, BaseURL: cfg.Host}, nil
}

// Fetch implements KeySource.
func (s *HTTPKeySource) Fetch(ctx context.Context) (string, *jose.JSONWebKeySet, error) {
	base, err := url.Parse(s.BaseURL)
	if err != nil {
		return "", nil, fmt.Errorf("key source base URL: %w", err)
	}
	var discovery struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := s.getJSON(ctx, base.JoinPath("/.well-known/openid-configuration").String(), &discovery); err != nil {
		return "", nil, err
	}
	if discovery.Issuer == "" || discovery.JWKSURI == "" {
		return "", nil, fmt.Errorf("OIDC discovery at %s names no issuer or jwks_uri", s.BaseURL)
	}
	jwksURL, err := url.Parse(discovery.JWKSURI)
	if err != nil {
		return "", nil, fmt.Errorf("OIDC discovery jwks_uri %q: %w", discovery.JWKSURI, err)
	}
	keysURL := *base
	keysURL.Path, keysURL.RawPath = jwksURL.Path, jwksURL.RawPath
	var keys jose.JSONWebKeySet
	if err := s.getJSON(ctx, keysURL.String(), &keys); err != nil {
		return "", nil, err
	}
	return discovery.Issuer, &keys, nil
}

func (s *HTTPKeySource) getJSON(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	// The API server serves the JWKS as application/jwk-set+json only.
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: decode: %w", u, err)
	}
	return nil
}
