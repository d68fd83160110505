package reconciler_test

import (
	"testing"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/reconciler"
)

func TestTheScopeOfATrigger(t *testing.T) {
	const install = "connectors-system"
	ca := map[string]string{connectorsv1alpha1.CACertLabel: "true"}
	other := map[string]string{"app": "x"}
	for _, tc := range []struct {
		name string
		o    reconciler.Object
		want string
	}{
		{"a connector concerns its namespace", reconciler.Object{Kind: reconciler.KindConnector, Namespace: "team", Name: "c"}, "team"},
		{"a class concerns every namespace", reconciler.Object{Kind: reconciler.KindConnectorClass, Name: "k8s"}, ""},
		{"a Secret concerns its namespace", reconciler.Object{Kind: reconciler.KindSecret, Namespace: "team", Name: "s", Labels: ca}, "team"},
		{"a labelled CA Secret of the install namespace concerns every namespace", reconciler.Object{Kind: reconciler.KindSecret, Namespace: install, Name: "s", Labels: ca}, ""},
		{"a Secret of the install namespace without labels may be a CA Secret", reconciler.Object{Kind: reconciler.KindSecret, Namespace: install, Name: "s"}, ""},
		{"another Secret of the install namespace concerns that namespace", reconciler.Object{Kind: reconciler.KindSecret, Namespace: install, Name: "s", Labels: other}, install},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.Scope(install); got != tc.want {
				t.Errorf("Scope = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestObjectOfFollowsOnlyTheReconcilersKinds(t *testing.T) {
	for _, tc := range []struct {
		apiVersion, kind string
		ok               bool
	}{
		{"connectors.alauda.io/v1alpha1", "Connector", true},
		{"connectors.alauda.io/v1alpha1", "ConnectorClass", true},
		{"v1", "Secret", true},
		{"v1", "ConfigMap", false},
		{"example.com/v1", "Connector", false},
		{"example.com/v1", "Secret", false},
	} {
		if _, ok := reconciler.ObjectOf(tc.apiVersion, tc.kind, "ns", "n", nil); ok != tc.ok {
			t.Errorf("ObjectOf(%s, %s) handled = %v, want %v", tc.apiVersion, tc.kind, ok, tc.ok)
		}
	}
}
