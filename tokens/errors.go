package tokens

import (
	"errors"
)

// Errors returned by validation. Each one is wrapped with details; test with
// errors.Is. All but ErrUnavailable mean the token is not acceptable (an HTTP
// boundary answers 401/407); ErrUnavailable means it could not be checked
// right now (503) and is never cached.
var (
	// ErrEmpty: no token was given.
	ErrEmpty = errors.New("no token")
	// ErrTooLarge: the token is longer than the configured limit.
	ErrTooLarge = errors.New("token too large")
	// ErrMalformed: the token is not a well-formed JWT.
	ErrMalformed = errors.New("token is not a well-formed JWT")
	// ErrAlgorithm: the token is signed with an algorithm that is not allowed.
	ErrAlgorithm = errors.New("token signing algorithm not allowed")
	// ErrUnknownKey: no key of the cluster's JWKS has the token's key ID.
	ErrUnknownKey = errors.New("token signed by an unknown key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("token signature invalid")
	// ErrIssuer: the issuer is not the cluster's.
	ErrIssuer = errors.New("token issuer not accepted")
	// ErrAudience: the token is not meant for this audience.
	ErrAudience = errors.New("token audience not accepted")
	// ErrExpired: the token has expired (or has no exp claim).
	ErrExpired = errors.New("token expired")
	// ErrNotServiceAccount: the token does not speak for a ServiceAccount.
	ErrNotServiceAccount = errors.New("token is not a ServiceAccount token")
	// ErrRevoked: the Pod the token is bound to was deleted.
	ErrRevoked = errors.New("token revoked: its pod was deleted")
	// ErrRejected: the API server's TokenReview did not authenticate the token.
	ErrRejected = errors.New("token rejected by the API server")
	// ErrUnavailable: the token could not be checked (API server unreachable).
	ErrUnavailable = errors.New("token cannot be checked now")
	// ErrForbidden: the identity may not use the connector.
	ErrForbidden = errors.New("not allowed to use the connector")
)

// IsInvalid reports whether err says the token is unacceptable (as opposed
// to uncheckable right now).
func IsInvalid(err error) bool {
	return err != nil && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrForbidden)
}
