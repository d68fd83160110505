package control

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/connectors-io/connectors/tokens"
)

// maxCallerTokenBytes bounds a caller's bearer token before it reaches a
// TokenReview.
const maxCallerTokenBytes = 16 << 10

// callerError is why the control API refuses a caller: an HTTP status, a
// one-line message for the caller, and for 503 the underlying error (for the
// log, never for the caller).
type callerError struct {
	status    int
	message   string
	challenge string // WWW-Authenticate of a 401
	err       error  // internal cause of a 503
}

func (e *callerError) Error() string { return e.message }

// authenticate checks the request's bearer token with a TokenReview for the
// reviewer's audiences and accepts only ServiceAccounts. purpose completes
// "only ServiceAccounts may …" in the 403 message.
func authenticate(reviewer *tokens.Reviewer, req *http.Request, purpose string) (tokens.Identity, *callerError) {
	bearer, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	bearer = strings.TrimSpace(bearer)
	switch {
	case !ok || bearer == "":
		return tokens.Identity{}, &callerError{status: http.StatusUnauthorized, challenge: `Bearer realm="connectors"`,
			message: "send your ServiceAccount token as Authorization: Bearer <token>"}
	case len(bearer) > maxCallerTokenBytes:
		return tokens.Identity{}, &callerError{status: http.StatusUnauthorized, challenge: `Bearer realm="connectors", error="invalid_token"`,
			message: fmt.Sprintf("the bearer token is not valid: longer than %d bytes", maxCallerTokenBytes)}
	}
	caller, err := reviewer.Review(req.Context(), tokens.Token(bearer))
	switch {
	case err == nil:
		return caller, nil
	case errors.Is(err, tokens.ErrNotServiceAccount):
		return tokens.Identity{}, &callerError{status: http.StatusForbidden, message: "only ServiceAccounts may " + purpose + ": " + err.Error()}
	case errors.Is(err, tokens.ErrUnavailable):
		return tokens.Identity{}, &callerError{status: http.StatusServiceUnavailable, message: "cannot authenticate the caller now; try again later", err: err}
	default:
		return tokens.Identity{}, &callerError{status: http.StatusUnauthorized, challenge: `Bearer realm="connectors", error="invalid_token"`,
			message: "the bearer token is not valid: " + err.Error()}
	}
}

// authenticated authenticates the request's caller with reviewer (see
// authenticate). On failure it answers the refusal, logs it and returns
// false; hint completes the message of a 401.
func authenticated(w http.ResponseWriter, r *http.Request, reviewer *tokens.Reviewer, purpose, hint string, log logr.Logger) (tokens.Identity, bool) {
	caller, cerr := authenticate(reviewer, r, purpose)
	if cerr == nil {
		return caller, true
	}
	if cerr.err != nil {
		log.Error(cerr.err, "authenticate a caller")
	}
	if cerr.challenge != "" {
		w.Header().Set("WWW-Authenticate", cerr.challenge)
	}
	msg := cerr.message
	if cerr.status == http.StatusUnauthorized && hint != "" {
		msg += " (" + hint + ")"
	}
	log.Info("request refused", "status", cerr.status, "reason", msg)
	writeError(w, cerr.status, msg)
	return tokens.Identity{}, false
}

// callerLimiter rate-limits each caller (by user name) with a bounded set
// of token buckets.
type callerLimiter struct {
	rate     rate.Limit
	burst    int
	limiters *lru.Cache[string, *rate.Limiter]
}

// newCallerLimiter allows each caller r requests per second with the burst;
// it keeps at most maxCallers buckets (the least recently used go first).
func newCallerLimiter(r rate.Limit, burst, maxCallers int) (*callerLimiter, error) {
	c, err := lru.New[string, *rate.Limiter](maxCallers)
	if err != nil {
		return nil, fmt.Errorf("control: caller rate limiters: %w", err)
	}
	return &callerLimiter{rate: r, burst: burst, limiters: c}, nil
}

// allow reports whether the caller may make a request now.
func (l *callerLimiter) allow(caller string) bool {
	// Get marks the caller recently used, so the busiest callers stay and
	// a flood of new names evicts the idle ones. Two first requests of one
	// caller racing may each add a limiter; the later wins, once.
	lim, ok := l.limiters.Get(caller)
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.limiters.Add(caller, lim)
	}
	return lim.Allow()
}
