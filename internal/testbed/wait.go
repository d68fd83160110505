package testbed

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// waitBound bounds every wait of the test bed: a bound for a hung test, not
// a speed assertion.
const waitBound = 30 * time.Second

// WaitForConnector polls the connector until check passes and returns it;
// it fails the test after 30 s, with the connector's conditions.
func (cp *ControlPlane) WaitForConnector(tb testing.TB, namespace, name, what string, check func(*connectorsv1alpha1.Connector) bool) *connectorsv1alpha1.Connector {
	tb.Helper()
	deadline := time.Now().Add(waitBound)
	var c connectorsv1alpha1.Connector
	for {
		err := cp.Client.Get(tb.Context(), client.ObjectKey{Namespace: namespace, Name: name}, &c)
		if err == nil && check(&c) {
			return &c
		}
		if time.Now().After(deadline) {
			tb.Fatalf("connector %s/%s: %s did not happen; conditions: %s", namespace, name, what, DescribeConditions(&c))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DescribeConditions lists a connector's conditions, one per line.
func DescribeConditions(c *connectorsv1alpha1.Connector) string {
	var b strings.Builder
	for _, cd := range c.Status.Conditions {
		b.WriteString("\n  " + cd.Type + "=" + string(cd.Status) + " " + cd.Reason + ": " + cd.Message)
	}
	return b.String()
}

// ConditionIs returns a check for a condition's status and reason (any
// reason when empty) in a status that describes the current spec.
func ConditionIs(t string, s metav1.ConditionStatus, reason string) func(*connectorsv1alpha1.Connector) bool {
	return func(c *connectorsv1alpha1.Connector) bool {
		cd := connectorsv1alpha1.FindCondition(c.Status.Conditions, t)
		return cd != nil && cd.Status == s && (reason == "" || cd.Reason == reason) && c.Status.ObservedGeneration == c.Generation
	}
}

// ReadyTrue checks that Ready is True for the current spec.
func ReadyTrue(c *connectorsv1alpha1.Connector) bool {
	return ConditionIs(connectorsv1alpha1.ConditionReady, metav1.ConditionTrue, "")(c)
}

// WaitForEvent waits for an event of the type and reason about the object
// named name in namespace; it fails the test after 30 s.
func (cp *ControlPlane) WaitForEvent(tb testing.TB, namespace, name, eventType, reason string) corev1.Event {
	tb.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		list, err := cp.Clientset.CoreV1().Events(namespace).List(tb.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err == nil {
			for _, e := range list.Items {
				if e.Type == eventType && e.Reason == reason {
					return e
				}
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no %s event %s about %s/%s", eventType, reason, namespace, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
