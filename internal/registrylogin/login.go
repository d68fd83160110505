package registrylogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Transport logs in to the registry at u (its scheme and host) with user
// and pass over inner for scopes (none: the registry's /v2/ only) and
// returns the round tripper that authenticates later requests to it.
// Creating it pings the registry and, for a token registry, fetches a
// token (bounded by ctx). describe turns a transport failure (dial, TLS)
// into a message; errors are sanitized (Sanitize).
func Transport(ctx context.Context, u *url.URL, user, pass string, inner http.RoundTripper, scopes []string, describe func(error) string) (http.RoundTripper, error) {
	reg, err := name.NewRegistry(u.Host, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("address %s is not a registry host: %w", u.Host, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	t, err := transport.NewWithContext(ctx, reg, auth, sameScheme{scheme: u.Scheme, inner: inner}, scopes)
	if err != nil {
		return nil, fmt.Errorf("registry login: %w", Sanitize(err, describe))
	}
	return sanitizing{inner: t, describe: describe}, nil
}

// sanitizing passes the errors of a request (a token refresh that failed)
// through Sanitize.
type sanitizing struct {
	inner    http.RoundTripper
	describe func(error) string
}

func (s sanitizing) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.inner.RoundTrip(r)
	if err != nil {
		return nil, Sanitize(err, s.describe)
	}
	return resp, nil
}

// sameScheme refuses requests in another scheme than the registry's
// address: go-containerregistry falls back to plain HTTP for some hosts
// (localhost, private addresses) when HTTPS fails, and a credential must
// never go out in the clear to an https registry's host.
type sameScheme struct {
	scheme string
	inner  http.RoundTripper
}

func (s sameScheme) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != s.scheme && s.scheme == "https" {
		return nil, SchemeRefused{Scheme: r.URL.Scheme, Host: r.URL.Host}
	}
	return s.inner.RoundTrip(r)
}

// SchemeRefused is the refusal of a request in plain HTTP to an https
// registry.
type SchemeRefused struct{ Scheme, Host string }

func (e SchemeRefused) Error() string {
	return fmt.Sprintf("refused to send a %s request to %s: the connector's address is https", e.Scheme, e.Host)
}

// StatusError is what a registry or its token service answered: the
// status and the error codes of its answer, never its body.
type StatusError struct {
	Status int
	Codes  []string
}

func (e *StatusError) Error() string {
	if len(e.Codes) == 0 {
		return fmt.Sprintf("the registry or its token service answered %d", e.Status)
	}
	return fmt.Sprintf("the registry or its token service answered %d (%s)", e.Status, strings.Join(e.Codes, ", "))
}

// Sanitize keeps what a token service or registry said that cannot hold a
// secret: the status and error codes of its answer (a *StatusError), the
// transport's failure (described by describe, when not nil), a timeout or
// a SchemeRefused; anything else is a generic message.
func Sanitize(err error, describe func(error) string) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		codes := make([]string, 0, len(terr.Errors))
		for _, d := range terr.Errors {
			if len(codes) < 4 && len(d.Code) <= 64 {
				codes = append(codes, string(d.Code))
			}
		}
		return &StatusError{Status: terr.StatusCode, Codes: codes}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer in time: %w", context.DeadlineExceeded)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("no answer in time: %w", context.Canceled)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		msg := uerr.Err.Error()
		if describe != nil {
			msg = describe(uerr.Err)
		}
		if strings.Contains(msg, "://") {
			// A refused redirect quotes its whole URL, query included.
			msg = "the request failed (a redirect was refused)"
		}
		return fmt.Errorf("%s %s: %s", uerr.Op, hostOf(uerr.URL), msg)
	}
	var refused SchemeRefused
	if errors.As(err, &refused) {
		return refused
	}
	return errors.New("the registry's token service gave no usable token")
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return "the registry"
}
