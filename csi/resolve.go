package csi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
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

// httpStatus translates a gRPC code at the HTTP boundary.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.FailedPrecondition:
		return http.StatusConflict
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// renderError maps a render error to a userError.
func renderError(err error) error {
	switch {
	case errors.Is(err, render.ErrNotFound):
		return newError(codes.NotFound, err, "%s", err.Error())
	case errors.Is(err, render.ErrInvalid):
		return newError(codes.InvalidArgument, err, "%s", err.Error())
	case errors.Is(err, render.ErrTemplate):
		// The ConnectorClass must be fixed; the request itself is fine.
		return newError(codes.FailedPrecondition, err, "%s", err.Error())
	default:
		return fmt.Errorf("render: %w", err)
	}
}

// connectorRef names a connector.
type connectorRef struct {
	Namespace, Name string
}

func (r connectorRef) String() string { return r.Namespace + "/" + r.Name }

// resolver authorizes an identity for connectors and reads them and their
// class.
type resolver struct {
	reader client.Reader
	authz  *tokens.Authorizer
}

// resolved is what a rendering needs from the cluster.
type resolved struct {
	class      *connectorsv1alpha1.ConnectorClass
	connectors []*connectorsv1alpha1.Connector
}

// resolve checks the identity may use every connector (PermissionDenied),
// that each exists (NotFound) and is Ready with a proxy address
// (FailedPrecondition), and reads the first connector's class.
func (r *resolver) resolve(ctx context.Context, id tokens.Identity, refs []connectorRef) (*resolved, error) {
	out := &resolved{}
	for _, ref := range refs {
		if err := r.authz.Authorize(ctx, id, ref.Namespace, ref.Name); err != nil {
			if errors.Is(err, tokens.ErrForbidden) {
				return nil, newError(codes.PermissionDenied, err,
					"serviceaccount %s/%s may not use connector %s in namespace %s: grant it get on connectors.connectors.alauda.io %s, or use a connector of namespace %s",
					id.Namespace, id.ServiceAccountName, ref.Name, ref.Namespace, ref.Name, id.Namespace)
			}
			return nil, newError(codes.Unavailable, err, "cannot authorize the use of connector %s in namespace %s now; try again later", ref.Name, ref.Namespace)
		}
		var conn connectorsv1alpha1.Connector
		if err := r.reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &conn); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, newError(codes.NotFound, err, "connector %s not found in namespace %s", ref.Name, ref.Namespace)
			}
			return nil, newError(codes.Unavailable, err, "cannot read connector %s in namespace %s now; try again later", ref.Name, ref.Namespace)
		}
		if err := ready(&conn); err != nil {
			return nil, err
		}
		out.connectors = append(out.connectors, &conn)
	}
	first := out.connectors[0]
	var class connectorsv1alpha1.ConnectorClass
	if err := r.reader.Get(ctx, client.ObjectKey{Name: first.Spec.ConnectorClassName}, &class); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, newError(codes.FailedPrecondition, err, "connector class %s of connector %s/%s not found", first.Spec.ConnectorClassName, first.Namespace, first.Name)
		}
		return nil, newError(codes.Unavailable, err, "cannot read connector class %s now; try again later", first.Spec.ConnectorClassName)
	}
	out.class = &class
	return out, nil
}

// ready returns a FailedPrecondition error unless the connector is Ready
// and has a proxy address.
func ready(c *connectorsv1alpha1.Connector) error {
	cond := connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionReady)
	if cond == nil || cond.Status != metav1.ConditionTrue {
		why := "its status has no Ready condition yet"
		if cond != nil {
			why = fmt.Sprintf("Ready is %s (%s: %s)", cond.Status, cond.Reason, cond.Message)
		}
		return newError(codes.FailedPrecondition, nil, "connector %s in namespace %s is not ready: %s; see kubectl describe connector %s -n %s", c.Name, c.Namespace, why, c.Name, c.Namespace)
	}
	if p := c.Status.Proxy; p == nil || p.HTTPAddress == nil || p.HTTPAddress.URL == "" {
		return newError(codes.FailedPrecondition, nil, "connector %s in namespace %s has no proxy address yet; see kubectl describe connector %s -n %s", c.Name, c.Namespace, c.Name, c.Namespace)
	}
	return nil
}
