package testbed

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

// Class returns a class shipped in chart/classes, decoded.
func Class(tb testing.TB, name string) *connectorsv1alpha1.ConnectorClass {
	tb.Helper()
	raw, err := chart.Class(name)
	if err != nil {
		tb.Fatal(err)
	}
	var class connectorsv1alpha1.ConnectorClass
	if err := yaml.UnmarshalStrict(raw, &class); err != nil {
		tb.Fatalf("testbed: decode class %s: %v", name, err)
	}
	return &class
}

// InstallK8sClass creates the shipped k8s class (once per control plane;
// an existing one is kept).
func (cp *ControlPlane) InstallK8sClass(tb testing.TB) {
	tb.Helper()
	cp.classOnce.Do(func() {
		if err := cp.Client.Create(tb.Context(), Class(tb, "k8s")); err != nil && !apierrors.IsAlreadyExists(err) {
			tb.Fatalf("testbed: install the k8s class: %v", err)
		}
	})
}

// BearerSecret returns (without creating it) a Secret of type
// connectors.cpaas.io/bearer-token holding token.
func BearerSecret(namespace, name, token string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Type:       connectorsv1alpha1.SecretTypeBearerToken,
		Data:       map[string][]byte{connectorsv1alpha1.BearerTokenKey: []byte(token)},
	}
}

// CreateCASecret creates a Secret holding pemBytes under ca.crt, labelled
// connectors.cpaas.io/ca-cert=true (trusted for every connector when it is
// in the install namespace).
func (cp *ControlPlane) CreateCASecret(tb testing.TB, namespace, name string, pemBytes []byte) *corev1.Secret {
	tb.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{connectorsv1alpha1.CACertLabel: "true"}},
		Data:       map[string][]byte{"ca.crt": pemBytes},
	}
	if err := cp.Client.Create(tb.Context(), s); err != nil {
		tb.Fatalf("testbed: create CA Secret %s/%s: %v", namespace, name, err)
	}
	return s
}

// PublishStatus writes the status the reconciler writes once it has
// checked the connector: a Ready condition with status, reason and
// message, observedGeneration equal to the connector's generation (the
// status describes its spec), and proxy as status.proxy.httpAddress.url
// (none when empty). c is updated in place.
func (cp *ControlPlane) PublishStatus(tb testing.TB, c *connectorsv1alpha1.Connector, status metav1.ConditionStatus, reason, message, proxy string) {
	tb.Helper()
	connectorsv1alpha1.SetCondition(&c.Status.Conditions, connectorsv1alpha1.Condition{
		Type: connectorsv1alpha1.ConditionReady, Status: status, Reason: reason, Message: message,
	}, metav1.Now())
	c.Status.Proxy = nil
	if proxy != "" {
		c.Status.Proxy = &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{URL: proxy}}
	}
	c.Status.ObservedGeneration = c.Generation
	if err := cp.Client.Status().Update(tb.Context(), c); err != nil {
		tb.Fatalf("testbed: publish the status of connector %s: %v", c.Ref(), err)
	}
}

// PodToken creates a Pod in namespace running as serviceAccount and mints
// a proxy token (audience connectors-proxy, 30 minutes) bound to it.
func (cp *ControlPlane) PodToken(tb testing.TB, namespace, pod, serviceAccount string) (tokens.Token, *corev1.Pod) {
	tb.Helper()
	p := cp.CreatePod(tb, namespace, pod, serviceAccount)
	m, err := tokens.NewMinter(tokens.MinterOptions{Client: cp.Clientset})
	if err != nil {
		tb.Fatal(err)
	}
	tok, _, err := m.MintForPod(tb.Context(), tokens.PodRef{Namespace: namespace, Name: pod, UID: p.UID, ServiceAccount: serviceAccount}, 0)
	if err != nil {
		tb.Fatalf("testbed: mint a proxy token for pod %s/%s: %v", namespace, pod, err)
	}
	return tok, p
}

// Kubeconfig renders the k8s class's kubeconfig through package render,
// exactly as the CSI driver does, for connector c (whose status gives the
// proxy address), the proxy token and the gateway CA.
func Kubeconfig(tb testing.TB, c *connectorsv1alpha1.Connector, token tokens.Token, gatewayCA []byte) []byte {
	tb.Helper()
	files, err := render.Render(render.Input{
		Class: Class(tb, "k8s"), Connectors: []*connectorsv1alpha1.Connector{c}, Token: token,
		ProxyCACert: gatewayCA, Selection: "kubeconfig",
	})
	if err != nil {
		tb.Fatalf("testbed: render the kubeconfig of connector %s: %v", c.Ref(), err)
	}
	return files["kubeconfig"]
}

// TargetToken creates a ServiceAccount of the "target cluster" (the
// control plane itself) in a namespace of its own that may read pods and
// namespaces and manage ConfigMaps (envtest runs no controller-manager, so
// the built-in view and edit roles are empty), and returns a token of it
// valid for an hour.
func (cp *ControlPlane) TargetToken(tb testing.TB, name string) string {
	tb.Helper()
	cp.targetOnce.Do(func() { cp.MustKubectl(tb, targetClusterRole, "apply", "-f", "-") })
	ns := cp.NewNamespace(tb, "target")
	cp.CreateServiceAccount(tb, ns, name)
	cp.MustKubectl(tb, "", "create", "clusterrolebinding", "target-"+ns+"-"+name, "--clusterrole=connector-target", "--serviceaccount="+ns+":"+name)
	tok, _ := cp.RequestToken(tb, ns, name, TokenOptions{Expiration: time.Hour})
	return tok
}

const targetClusterRole = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: connector-target
rules:
- apiGroups: [""]
  resources: [pods, pods/log, namespaces]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/exec, pods/attach, pods/portforward]
  verbs: [get, create]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
`
