package render

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

// Authorizer decides whether an identity may use a connector;
// *tokens.Authorizer implements it.
type Authorizer interface {
	// Authorize returns nil, or an error wrapping tokens.ErrForbidden or
	// tokens.ErrUnavailable.
	Authorize(ctx context.Context, id tokens.Identity, namespace, name string) error
}

// Resolver reads what a rendering needs from the cluster for an identity:
// the connectors it may use, each of them usable
// ([connectorsv1alpha1.Connector.Usable]), and the class of the first.
type Resolver struct {
	// Reader reads Connectors and ConnectorClasses (an uncached client is
	// fine). Required.
	Reader client.Reader
	// Authorizer decides whether the identity may use each connector.
	// Required.
	Authorizer Authorizer
}

// Resolved is what Resolve found: Input.Class and Input.Connectors.
type Resolved struct {
	// Class is the class of the first connector.
	Class *connectorsv1alpha1.ConnectorClass
	// Classes are the classes of all the connectors, by name.
	Classes map[string]*connectorsv1alpha1.ConnectorClass
	// Connectors are the connectors, in the order asked for.
	Connectors []*connectorsv1alpha1.Connector
}

// resolveError is an error of Resolve: a message for the caller, its kind
// for errors.Is, and the cause (for errors.Is and logs, not shown).
type resolveError struct {
	kind  error
	msg   string
	cause error
}

func (e *resolveError) Error() string        { return e.msg }
func (e *resolveError) Is(target error) bool { return target == e.kind }
func (e *resolveError) Unwrap() error        { return e.cause }

func resolveFail(kind, cause error, format string, args ...any) error {
	return &resolveError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// Resolve checks that id may use every connector (else ErrForbidden), that
// each exists (else ErrNotFound) and is usable (else ErrPrecondition, with
// the message of Usable), and reads the first connector's class (missing:
// ErrPrecondition). A failure to ask the cluster is ErrUnavailable.
func (r *Resolver) Resolve(ctx context.Context, id tokens.Identity, refs []connectorsv1alpha1.ConnectorRef) (*Resolved, error) {
	if r.Reader == nil || r.Authorizer == nil {
		return nil, errors.New("render: Resolver.Reader and .Authorizer are required")
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w: no connector named", ErrInvalid)
	}
	out := &Resolved{}
	for _, ref := range refs {
		// Authorization first: whether a connector exists is only told to
		// identities that may use it.
		if err := r.Authorizer.Authorize(ctx, id, ref.Namespace, ref.Name); err != nil {
			if errors.Is(err, tokens.ErrForbidden) {
				return nil, resolveFail(ErrForbidden, err,
					"serviceaccount %s/%s may not use connector %s in namespace %s: grant it get on connectors.connectors.alauda.io %s, or use a connector of namespace %s",
					id.Namespace, id.ServiceAccountName, ref.Name, ref.Namespace, ref.Name, id.Namespace)
			}
			return nil, resolveFail(ErrUnavailable, err, "cannot authorize the use of connector %s in namespace %s now; try again later", ref.Name, ref.Namespace)
		}
		var conn connectorsv1alpha1.Connector
		if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &conn); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, resolveFail(ErrNotFound, err, "connector %s not found in namespace %s", ref.Name, ref.Namespace)
			}
			return nil, resolveFail(ErrUnavailable, err, "cannot read connector %s in namespace %s now; try again later", ref.Name, ref.Namespace)
		}
		if err := conn.Usable(); err != nil {
			return nil, resolveFail(ErrPrecondition, err, "%s", err.Error())
		}
		out.Connectors = append(out.Connectors, &conn)
	}
	out.Classes = map[string]*connectorsv1alpha1.ConnectorClass{}
	for _, c := range out.Connectors {
		name := c.Spec.ConnectorClassName
		if _, done := out.Classes[name]; done {
			continue
		}
		var class connectorsv1alpha1.ConnectorClass
		if err := r.Reader.Get(ctx, client.ObjectKey{Name: name}, &class); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, resolveFail(ErrPrecondition, err, "connector class %s of connector %s not found", name, c.Ref())
			}
			return nil, resolveFail(ErrUnavailable, err, "cannot read connector class %s now; try again later", name)
		}
		out.Classes[name] = &class
	}
	out.Class = out.Classes[out.Connectors[0].Spec.ConnectorClassName]
	return out, nil
}
