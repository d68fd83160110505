//go:build integration

package control_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/reconciler"
)

// TestTheControlAPIWorksWithTheGeneratedClusterRole runs serverless mode as
// a ServiceAccount bound to chart/rbac/role.yaml only: the reconcile and
// the token API must work with exactly the generated permissions.
func TestTheControlAPIWorksWithTheGeneratedClusterRole(t *testing.T) {
	cp.InstallK8sClass(t)
	install := namespace(t, "install")
	cp.CreateServiceAccount(t, install, "connectors-controller")
	role, err := chart.RBAC("role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cp.MustKubectl(t, string(role), "apply", "-f", "-")
	if _, err := cp.Clientset.RbacV1().ClusterRoleBindings().Create(t.Context(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "connectors-controller-" + install},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "connectors-controller"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: install, Name: "connectors-controller"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + install + ":connectors-controller"}
	c, err := client.New(cfg, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cp.CreateCASecret(t, install, "apiserver-ca", cp.Config.CAData)

	// The quick start's objects, the target being the control plane itself.
	ns := namespace(t, "k8s-connector-demo")
	cp.CreateServiceAccount(t, ns, "runner")
	bearerSecret(t, ns, "k8s-secret", cp.TargetToken(t, "reader"))
	connector(t, ns, "k8s-connector", "k8s-secret")

	rec, stop := reconciler.NewEventRecorder(cs, cp.Scheme, "connectors-control")
	t.Cleanup(stop)
	runner, err := reconciler.NewRunner(reconciler.Options{Client: c, Recorder: rec, Namespace: install}, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, control.Options{Runner: runner}, func(o *control.Options) { o.Clientset, o.Reader = cs, c })

	caller := triggerCaller(t, "source", true)
	mayGetConnectors(t, caller)
	code, body := call(t, http.MethodPost, srv.URL+"/v1/reconcile/"+ns+"/k8s-connector", caller, nil, "")
	var res reconciler.Result
	if code != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Ready == nil || res.Ready.Status != metav1.ConditionTrue {
		t.Fatalf("reconcile answered %d %s, want Ready True", code, body)
	}

	pod := cp.CreatePod(t, ns, "job", "runner")
	callerToken, _ := cp.RequestToken(t, ns, "runner", testbed.TokenOptions{BoundPod: pod})
	captured.Secret(callerToken)
	code, body = call(t, http.MethodPost, srv.URL+"/v1/namespaces/"+ns+"/connectors/k8s-connector/token", callerToken, nil, "")
	var tr control.TokenResponse
	if code != http.StatusOK || json.Unmarshal(body, &tr) != nil || tr.Token == "" || !strings.Contains(tr.ProxyURL, ns+"%2Fk8s-connector:") {
		t.Fatalf("token API answered %d", code)
	}
	captured.Secret(tr.Token)
}
