package reconciler

import (
	"strings"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// Kinds of the objects a trigger can be about.
const (
	KindConnector      = "Connector"
	KindConnectorClass = "ConnectorClass"
	KindSecret         = "Secret"
)

// Object is what a trigger is about: a change of a Connector, a
// ConnectorClass or a Secret (as a Knative ApiServerSource reports it), or
// a request to reconcile one connector.
type Object struct {
	// Kind is KindConnector, KindConnectorClass or KindSecret.
	Kind string
	// Namespace and Name of the object (no namespace for a class).
	Namespace, Name string
	// Labels of the object, if the trigger carried them: a Secret labelled
	// connectorsv1alpha1.CACertLabel in the install namespace concerns
	// every connector.
	Labels map[string]string
}

// ObjectOf returns the Object of a Kubernetes kind and apiVersion, and
// false for a kind the reconcilers do not follow.
func ObjectOf(apiVersion, kind, namespace, name string, labels map[string]string) (Object, bool) {
	group := ""
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		group = apiVersion[:i]
	}
	o := Object{Kind: kind, Namespace: namespace, Name: name, Labels: labels}
	switch {
	case (kind == KindConnector || kind == KindConnectorClass) && group == connectorsv1alpha1.Group:
		if kind == KindConnectorClass {
			o.Namespace = ""
		}
		return o, true
	case kind == KindSecret && group == "":
		return o, true
	}
	return Object{}, false
}

// Scope is the namespace whose connectors a change of o may concern, ""
// for every namespace: a class, or a CA Secret trusted by every connector
// (labelled in installNamespace). A Secret of installNamespace whose labels
// the trigger does not carry (a Knative ApiServerSource in Reference mode
// sends none) may be such a CA Secret, so it concerns every connector too.
func (o Object) Scope(installNamespace string) string {
	switch {
	case o.Kind == KindConnectorClass:
		return ""
	case o.Kind == KindSecret && o.Namespace == installNamespace && (o.Labels == nil || o.Labels[connectorsv1alpha1.CACertLabel] == "true"):
		return ""
	}
	return o.Namespace
}

// concerns reports whether a change of o concerns connector c.
func (o Object) concerns(c *connectorsv1alpha1.Connector, installNamespace string) bool {
	switch o.Kind {
	case KindConnector:
		return c.Namespace == o.Namespace && c.Name == o.Name
	case KindConnectorClass:
		return c.Spec.ConnectorClassName == o.Name
	case KindSecret:
		if o.Scope(installNamespace) == "" {
			return true
		}
		if c.Namespace != o.Namespace {
			return false
		}
		for _, n := range c.ReferencedSecrets() {
			if n == o.Name {
				return true
			}
		}
	}
	return false
}
