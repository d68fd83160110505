package tokens

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// maxCallerTokenBytes bounds a caller's bearer token before it reaches a
// TokenReview.
const maxCallerTokenBytes = 16 << 10

// CallerError is why a control API refuses a caller: an HTTP status, a
// one-line message for the caller, and for 503 the underlying error (for the
// log, never for the caller).
type CallerError struct {
	// Status is the HTTP status to answer.
	Status int
	// Message says what is wrong, without internal details.
	Message string
	// Challenge is the WWW-Authenticate header to send with a 401, if any.
	Challenge string
	// Err is the internal cause of a 503.
	Err error
}

func (e *CallerError) Error() string { return e.Message }

// AuthenticateCaller checks the request's own bearer token with a
// TokenReview (for the API server's audience: r has nil audiences) and
// accepts only ServiceAccounts. purpose completes "only ServiceAccounts may
// …" in the 403 message.
func (r *Reviewer) AuthenticateCaller(req *http.Request, purpose string) (Identity, *CallerError) {
	bearer, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	bearer = strings.TrimSpace(bearer)
	switch {
	case !ok || bearer == "":
		return Identity{}, &CallerError{Status: http.StatusUnauthorized, Challenge: `Bearer realm="connectors"`,
			Message: "send your ServiceAccount token as Authorization: Bearer <token>"}
	case len(bearer) > maxCallerTokenBytes:
		return Identity{}, &CallerError{Status: http.StatusUnauthorized, Challenge: `Bearer realm="connectors", error="invalid_token"`,
			Message: fmt.Sprintf("the bearer token is not valid: longer than %d bytes", maxCallerTokenBytes)}
	}
	caller, err := r.Review(req.Context(), Token(bearer))
	switch {
	case err == nil:
		return caller, nil
	case errors.Is(err, ErrNotServiceAccount):
		return Identity{}, &CallerError{Status: http.StatusForbidden, Message: "only ServiceAccounts may " + purpose + ": " + err.Error()}
	case errors.Is(err, ErrUnavailable):
		return Identity{}, &CallerError{Status: http.StatusServiceUnavailable, Message: "cannot authenticate the caller now; try again later", Err: err}
	default:
		return Identity{}, &CallerError{Status: http.StatusUnauthorized, Challenge: `Bearer realm="connectors", error="invalid_token"`,
			Message: "the bearer token is not valid: " + err.Error()}
	}
}

// CallerLimiter rate-limits each caller (by user name) with a bounded set
// of token buckets.
type CallerLimiter struct {
	rate     rate.Limit
	burst    int
	limiters *lru.Cache[string, *rate.Limiter]
}

// NewCallerLimiter allows each caller r requests per second with the burst;
// it keeps at most maxCallers buckets (the least recently used go first).
func NewCallerLimiter(r rate.Limit, burst, maxCallers int) (*CallerLimiter, error) {
	c, err := lru.New[string, *rate.Limiter](maxCallers)
	if err != nil {
		return nil, fmt.Errorf("tokens: caller rate limiters: %w", err)
	}
	return &CallerLimiter{rate: r, burst: burst, limiters: c}, nil
}

// Allow reports whether the caller may make a request now.
func (l *CallerLimiter) Allow(caller string) bool {
	lim := rate.NewLimiter(l.rate, l.burst)
	if prev, found, _ := l.limiters.PeekOrAdd(caller, lim); found {
		lim = prev
	}
	return lim.Allow()
}
