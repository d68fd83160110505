//go:build integration

package tokens_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/connectors-io/connectors/internal/testbed"
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
	t.Run("with RequireSAR a RoleBinding in the connector's own namespace allows it", func(t *testing.T) {
		grantConnectorGet(t, home, "k8s-connector", home, "runner")
		err := newAuthorizer(t, func(o *tokens.AuthorizerOptions) { o.RequireSAR = true }).Authorize(t.Context(), id, home, "k8s-connector")
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestConnectorsInKubePublicAreUsableFromEveryNamespaceWithGet: as in the
// original, a cluster-level connector lives in kube-public; one binding of
// get there to every ServiceAccount opens it to all namespaces, and
// without it no namespace may use it.
func TestConnectorsInKubePublicAreUsableFromEveryNamespaceWithGet(t *testing.T) {
	a := newAuthorizer(t, nil)
	first, second := namespace(t), namespace(t)
	for _, ns := range []string{first, second} {
		if err := a.Authorize(t.Context(), tokens.Identity{Namespace: ns, ServiceAccountName: "ci"}, "kube-public", "shared-registry"); !errors.Is(err, tokens.ErrForbidden) {
			t.Fatalf("%s before the grant: err = %v, want ErrForbidden", ns, err)
		}
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-public", Name: "use-shared-registry"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"connectors.alauda.io"}, Resources: []string{"connectors"}, ResourceNames: []string{"shared-registry"}, Verbs: []string{"get"}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-public", Name: "use-shared-registry"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "system:serviceaccounts"}},
	}
	if _, err := cp.Clientset.RbacV1().Roles("kube-public").Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Clientset.RbacV1().RoleBindings("kube-public").Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Clientset.RbacV1().RoleBindings("kube-public").Delete(t.Context(), binding.Name, metav1.DeleteOptions{})
		_ = cp.Clientset.RbacV1().Roles("kube-public").Delete(t.Context(), role.Name, metav1.DeleteOptions{})
	})
	fresh := newAuthorizer(t, nil) // no cached denies
	for _, ns := range []string{first, second} {
		if err := fresh.Authorize(t.Context(), tokens.Identity{Namespace: ns, ServiceAccountName: "ci"}, "kube-public", "shared-registry"); err != nil {
			t.Errorf("%s after the grant: %v", ns, err)
		}
	}
}

func TestAuthorizationDecisionsAreSharedThroughRedis(t *testing.T) {
	home, other := namespace(t), namespace(t)
	id := tokens.Identity{Namespace: home, ServiceAccountName: "runner"}
	grantConnectorGet(t, other, "shared", home, "runner")
	r := testbed.StartRedis(t)
	key := sharedKey(t)
	// Two replicas of the gateway: each its own pipeline, Redis client and
	// authorizer; the same Redis and shared key.
	type replicaAuthz struct {
		*tokens.Authorizer
		reg *prometheus.Registry
	}
	replicaOf := func() replicaAuthz {
		reg := prometheus.NewRegistry()
		p := newReplica(t, key, redisClient(t, r), nil)
		return replicaAuthz{newAuthorizer(t, func(o *tokens.AuthorizerOptions) { o.Shared = p.Pipeline; o.Registerer = reg }), reg}
	}
	decisions := func(a replicaAuthz, result, source string) float64 {
		mfs, err := a.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if mf.GetName() == "connectors_authz_decisions_total" && labels["result"] == result && labels["source"] == source {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	a, b := replicaOf(), replicaOf()

	t.Run("an allow one replica got from the API server serves the other", func(t *testing.T) {
		if err := a.Authorize(t.Context(), id, other, "shared"); err != nil {
			t.Fatal(err)
		}
		if err := b.Authorize(t.Context(), id, other, "shared"); err != nil {
			t.Fatal(err)
		}
		if got, sar := decisions(b, "allowed", "redis"), decisions(b, "allowed", "sar"); got != 1 || sar != 0 {
			t.Errorf("the second replica: %v allows from Redis and %v SubjectAccessReviews, want 1 and 0", got, sar)
		}
	})
	t.Run("a deny is shared too, with its reason", func(t *testing.T) {
		if err := a.Authorize(t.Context(), id, other, "private"); !errors.Is(err, tokens.ErrForbidden) {
			t.Fatalf("err = %v, want ErrForbidden", err)
		}
		err := b.Authorize(t.Context(), id, other, "private")
		if !errors.Is(err, tokens.ErrForbidden) || !strings.Contains(err.Error(), "may not get connector "+other+"/private") {
			t.Fatalf("err = %v, want the shared denial", err)
		}
		if got := decisions(b, "denied", "redis"); got != 1 {
			t.Errorf("%v denials from Redis, want 1", got)
		}
	})
	t.Run("an allow planted in Redis without the shared key is ignored", func(t *testing.T) {
		rdb := redisClient(t, r)
		keys, err := rdb.Keys(t.Context(), "*a:*").Result()
		if err != nil || len(keys) == 0 {
			t.Fatalf("no decisions in Redis: %v", err)
		}
		forged := `0000.{"allowed":true,"until":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`
		for _, k := range keys {
			if err := rdb.Set(t.Context(), k, forged, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		}
		c := replicaOf() // nothing cached in this process
		if err := c.Authorize(t.Context(), id, other, "private"); !errors.Is(err, tokens.ErrForbidden) {
			t.Fatalf("err = %v, want ErrForbidden from the API server", err)
		}
		if got := decisions(c, "denied", "sar"); got != 1 {
			t.Errorf("%v denials from a SubjectAccessReview, want 1", got)
		}
	})
}
