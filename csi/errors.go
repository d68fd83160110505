package csi

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/connectors-io/connectors/render"
)

// userError is an error with the gRPC code it maps to and a message for
// the user; the cause is kept for errors.Is but not shown.
type userError struct {
	code  codes.Code
	msg   string
	cause error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.cause }

func newError(code codes.Code, cause error, format string, args ...any) error {
	return &userError{code: code, msg: fmt.Sprintf(format, args...), cause: cause}
}

// codeOf is the gRPC code of err: the userError's, or Internal.
func codeOf(err error) codes.Code {
	var ue *userError
	if errors.As(err, &ue) {
		return ue.code
	}
	return codes.Internal
}

// grpcError translates err at the gRPC boundary.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codeOf(err), err.Error())
}

// renderError maps an error of render.Resolve or render.Render to a
// userError with its gRPC code.
func renderError(err error) error {
	for _, m := range []struct {
		kind error
		code codes.Code
	}{
		{render.ErrInvalid, codes.InvalidArgument},
		{render.ErrNotFound, codes.NotFound},
		{render.ErrForbidden, codes.PermissionDenied},
		{render.ErrPrecondition, codes.FailedPrecondition},
		{render.ErrUnavailable, codes.Unavailable},
		// The ConnectorClass must be fixed; the request itself is fine.
		{render.ErrTemplate, codes.FailedPrecondition},
	} {
		if errors.Is(err, m.kind) {
			return newError(m.code, err, "%s", err.Error())
		}
	}
	return fmt.Errorf("render: %w", err)
}
