package tokens_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/connectors-io/connectors/tokens"
)

func newAuthorizer(t *testing.T, mod func(*tokens.AuthorizerOptions)) *tokens.Authorizer {
	t.Helper()
	opts := tokens.AuthorizerOptions{Client: cp.Clientset}
	if mod != nil {
		mod(&opts)
	}
	a, err := tokens.NewAuthorizer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// grantConnectorGet lets ServiceAccount sa of saNamespace get the connector.
func grantConnectorGet(t *testing.T, namespace, connector, saNamespace, sa string) {
	t.Helper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "use-" + connector},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"connectors.alauda.io"}, Resources: []string{"connectors"},
			ResourceNames: []string{connector}, Verbs: []string{"get"},
		}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "use-" + connector},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: saNamespace, Name: sa}},
	}
	if _, err := cp.Clientset.RbacV1().Roles(namespace).Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Clientset.RbacV1().RoleBindings(namespace).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestAuthorizer(t *testing.T) {
	home, other := namespace(t), namespace(t)
	id := tokens.Identity{Namespace: home, ServiceAccountName: "runner"}

	t.Run("an identity of the connector's namespace may use it without asking the API server", func(t *testing.T) {
		if err := newAuthorizer(t, nil).Authorize(t.Context(), id, home, "k8s-connector"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("with RequireSAR the connector's own namespace needs RBAC too", func(t *testing.T) {
		err := newAuthorizer(t, func(o *tokens.AuthorizerOptions) { o.RequireSAR = true }).Authorize(t.Context(), id, home, "k8s-connector")
		if !errors.Is(err, tokens.ErrForbidden) {
			t.Fatalf("err = %v, want ErrForbidden", err)
		}
	})

	now := time.Now()
	a := newAuthorizer(t, func(o *tokens.AuthorizerOptions) { o.Now = func() time.Time { return now } })
	t.Run("another namespace's connector is denied without RBAC, and the message says how to grant it", func(t *testing.T) {
		err := a.Authorize(t.Context(), id, other, "shared")
		if !errors.Is(err, tokens.ErrForbidden) {
			t.Fatalf("err = %v, want ErrForbidden", err)
		}
		if want := "may not get connector " + other + "/shared"; !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	})
	grantConnectorGet(t, other, "shared", home, "runner")
	t.Run("the deny is cached briefly", func(t *testing.T) {
		if err := a.Authorize(t.Context(), id, other, "shared"); !errors.Is(err, tokens.ErrForbidden) {
			t.Fatalf("err = %v, want the cached deny", err)
		}
	})
	t.Run("after a RoleBinding grants get on the connector it is allowed", func(t *testing.T) {
		now = now.Add(6 * time.Second)
		if err := a.Authorize(t.Context(), id, other, "shared"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the grant names one connector: others of that namespace stay denied", func(t *testing.T) {
		if err := a.Authorize(t.Context(), id, other, "private"); !errors.Is(err, tokens.ErrForbidden) {
			t.Fatalf("err = %v, want ErrForbidden", err)
		}
	})
}
