//go:build integration

package gateway_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/gateway"
)

// TestTheGatewayReadsOnlyTheSecretsConnectorsReference runs the gateway as a
// ServiceAccount that may read exactly two Secrets of the connector's
// namespace (by name: the credential and its CA) and list the install
// namespace's Secrets: listing or watching any other Secret would be
// refused, and the gateway would never become ready.
func TestTheGatewayReadsOnlyTheSecretsConnectorsReference(t *testing.T) {
	ctx := t.Context()
	ns, install := namespace(t, "only"), namespace(t, "install")
	gwNS := namespace(t, "gw")
	cp.CreateServiceAccount(t, gwNS, "gateway")
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: gwNS, Name: "gateway"}}
	rbac := cp.Clientset.RbacV1()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: gwNS + "-connectors"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{connectorsv1alpha1.GroupVersion.Group}, Resources: []string{"connectors", "connectorclasses"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}))
	must(rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: gwNS + "-connectors"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: gwNS + "-connectors"},
		Subjects:   subject,
	}, metav1.CreateOptions{}))
	role := func(ns string, names ...string) {
		must(rbac.Roles(ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "gateway-secrets"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}, ResourceNames: names}},
		}, metav1.CreateOptions{}))
		must(rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "gateway-secrets"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "gateway-secrets"},
			Subjects:   subject,
		}, metav1.CreateOptions{}))
	}
	role(install)                    // the labelled CA Secrets
	role(ns, "rec-secret", "rec-ca") // the connector's own, by name
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + gwNS + ":gateway"}

	reg := prometheus.NewRegistry()
	in := newInstall(t, cfg, install)
	in.connectorNamespaces = []string{ns, install} // the watch count is this test's only
	e := in.start(t, func(o *gateway.Options) { o.Registerer = reg })
	watches := func() int { return int(gaugeOf(t, reg, "connectors_gateway_secret_watches")) }
	before := watches()

	// A Secret of the same namespace that no connector references.
	must(nil, cp.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}, StringData: map[string]string{"token": "x"}}))
	up := newRecorder(t)
	c := recordingConnector(t, e, ns, "rec", up, "first-secret", true)
	token, _ := cp.PodToken(t, ns, "job", "default")
	cl := e.client(t, ns+"/rec", token)
	if resp, body := get(t, cl, up.URL+"/api", nil); resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := up.last().Get("Authorization"); got != "Bearer first-secret" {
		t.Errorf("upstream Authorization = %q, want the connector's token", got)
	}
	waitFor(t, "a watch for each of the connector's two Secrets", func() bool { return watches() == before+2 })
	// Once the watches have synced, requests read no Secret from the API server.
	reads := func() float64 { return gaugeOf(t, reg, "connectors_gateway_secret_api_reads_total") }
	waitFor(t, "requests served from the watches", func() bool {
		n := reads()
		for range 3 {
			get(t, cl, up.URL+"/api", nil)
		}
		return reads() == n
	})

	var sec corev1.Secret
	must(nil, cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rec-secret"}, &sec))
	sec.Data["token"] = []byte("rotated-secret")
	must(nil, cp.Client.Update(ctx, &sec))
	waitFor(t, "the rotated token upstream", func() bool {
		get(t, cl, up.URL+"/api", nil)
		return up.last().Get("Authorization") == "Bearer rotated-secret"
	})

	// A second connector on the same Secrets adds no watch; deleting both
	// stops them.
	twin := &connectorsv1alpha1.Connector{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "twin"}, Spec: c.Spec}
	must(nil, cp.Client.Create(ctx, twin))
	must(nil, cp.Client.Delete(ctx, c))
	waitFor(t, "the twin to keep the watches", func() bool { return watches() == before+2 })
	must(nil, cp.Client.Delete(ctx, twin))
	waitFor(t, "the watches to stop with the last connector", func() bool { return watches() == before })
}

// TestASecretOverTheWatchLimitIsWatchedOnceASlotIsFree: beyond
// Options.CacheSize watches a Secret is read from the API server on use,
// until another watch stops.
func TestASecretOverTheWatchLimitIsWatchedOnceASlotIsFree(t *testing.T) {
	ctx := t.Context()
	// Every connector of the test bed takes a slot: leave exactly one free.
	var all connectorsv1alpha1.ConnectorList
	if err := cp.Client.List(ctx, &all); err != nil {
		t.Fatal(err)
	}
	referenced := map[string]bool{}
	for _, c := range all.Items {
		if r := c.Spec.Auth.SecretRef; r != nil {
			referenced[c.Namespace+"/"+r.Name] = true
		}
		if r := c.Spec.CACertSecretRef; r != nil {
			referenced[c.Namespace+"/"+r.Name] = true
		}
	}
	reg := prometheus.NewRegistry()
	e := startGateway(t, func(o *gateway.Options) { o.Registerer = reg; o.CacheSize = len(referenced) + 1 })
	reads := func() float64 { return gaugeOf(t, reg, "connectors_gateway_secret_api_reads_total") }
	ns := namespace(t, "limit")
	up := newRecorder(t)
	first := recordingConnector(t, e, ns, "first", up, "first-secret", false) // takes the free slot
	// The second's Secret is over the limit. (Its upstream is not trusted,
	// so requests end in 502; the credential is read before that.)
	connectorWith(t, ns, "second", up.URL, bearerSecret("second-secret"), nil, "http://"+e.addr)
	token, _ := cp.PodToken(t, ns, "job", "default")
	cl := e.client(t, ns+"/second", token)
	n := reads()
	get(t, cl, up.URL+"/", nil)
	get(t, cl, up.URL+"/", nil)
	if got := reads() - n; got < 2 {
		t.Fatalf("%v API reads for two requests over the limit, want one each", got)
	}
	if err := cp.Client.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second connector's Secret to be watched in the freed slot", func() bool {
		n := reads()
		for range 3 {
			get(t, cl, up.URL+"/", nil)
		}
		return reads() == n
	})
}
