package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a Connector.
const (
	// ConditionConnectorClassReady says whether the connector's class exists.
	ConditionConnectorClassReady = "ConnectorClassReady"
	// ConditionSecretReady says whether the credential Secret exists and has
	// the type and keys the class asks for.
	ConditionSecretReady = "SecretReady"
	// ConditionLivenessReady says whether the target answers the class's
	// liveness probe.
	ConditionLivenessReady = "LivenessReady"
	// ConditionAuthReady says whether the target accepts the credential in
	// the class's auth probe.
	ConditionAuthReady = "AuthReady"
	// ConditionProxyServiceReady says whether the connector's proxy Service
	// exists and its proxy address is published.
	ConditionProxyServiceReady = "ProxyServiceReady"
	// ConditionCACertReady says whether spec.caCertSecretRef holds a usable
	// CA bundle. It is informational (severity Info) and not part of Ready:
	// a target that needs the CA fails LivenessReady on its own.
	ConditionCACertReady = "CACertReady"
	// ConditionReady aggregates the others.
	ConditionReady = "Ready"
)

// Severities of conditions that are not True.
const (
	// SeverityInfo marks a condition outside Ready.
	SeverityInfo = "Info"
)

// Condition types of a ConnectorClass (plus ConditionReady).
const (
	// ConditionProxyReady says whether the class's proxy is resolved.
	ConditionProxyReady = "ProxyReady"
	// ConditionAPIReady says whether the class's API is resolved.
	ConditionAPIReady = "APIReady"
)

// Condition reasons used by the reconciler.
const (
	// ReasonConnectorClassNotFound: spec.connectorClassName names no class.
	ReasonConnectorClassNotFound = "ConnectorClassNotFound"
	// ReasonSecretNotFound: the Secret is missing, of the wrong type or lacks a key.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretOptional: the auth type is optional and no Secret is given.
	ReasonSecretOptional = "SecretOptional"
	// ReasonNonLivenessProbe: the class declares no liveness probe.
	ReasonNonLivenessProbe = "NonLivenessProbe"
	// ReasonConnectionFailed: the liveness probe could not reach the target.
	ReasonConnectionFailed = "ConnectionFailed"
	// ReasonNonAuthProbe: the class declares no auth probe for the auth type.
	ReasonNonAuthProbe = "NonAuthProbe"
	// ReasonAuthenticationFailed: the target refused the credential.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonNonProxy: the class declares no proxy.
	ReasonNonProxy = "NonProxy"
	// ReasonProxyServiceNotFound: the proxy Service could not be ensured.
	ReasonProxyServiceNotFound = "ProxyServiceNotFound"
	// ReasonNonAPI: the class declares no API.
	ReasonNonAPI = "NonAPI"
	// ReasonValid: spec.caCertSecretRef holds PEM certificates.
	ReasonValid = "Valid"
	// ReasonNoCACert: the connector names no spec.caCertSecretRef.
	ReasonNoCACert = "NoCACert"
	// ReasonInvalidPEM: spec.caCertSecretRef holds no PEM certificate.
	ReasonInvalidPEM = "InvalidPEM"
)

// ConnectorConditionTypes returns the conditions whose aggregate is a
// Connector's Ready condition, in the order the reconciler evaluates them.
func ConnectorConditionTypes() []string {
	return []string{
		ConditionConnectorClassReady,
		ConditionSecretReady,
		ConditionLivenessReady,
		ConditionAuthReady,
		ConditionProxyServiceReady,
	}
}

// Condition is an observation of one aspect of an object's state.
type Condition struct {
	// Type of the condition, for example Ready.
	// +kubebuilder:validation:MinLength=1
	Type string `json:"type"`
	// Status is True, False or Unknown.
	// +kubebuilder:validation:Enum=True;False;Unknown
	Status metav1.ConditionStatus `json:"status"`
	// Reason is a CamelCase word for the cause of the status.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message explains the status to a human and says how to fix a problem.
	// +optional
	Message string `json:"message,omitempty"`
	// Severity: empty (Error) or Warning or Info. Conditions outside Ready
	// (CACertReady) are Info whatever their status.
	// +optional
	// +kubebuilder:validation:Enum="";Error;Warning;Info
	Severity string `json:"severity,omitempty"`
	// LastTransitionTime is when Status last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
	// LastProbeTime is when a probe last produced this condition.
	// +optional
	LastProbeTime *metav1.Time `json:"lastProbeTime,omitempty"`
}

// FindCondition returns the condition of type t, or nil.
func FindCondition(conds []Condition, t string) *Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// SetCondition puts c into conds, replacing a condition of the same type.
// LastTransitionTime is set to now when the status changes (or the
// condition is new) and kept otherwise. It reports whether anything changed.
func SetCondition(conds *[]Condition, c Condition, now metav1.Time) bool {
	old := FindCondition(*conds, c.Type)
	if old == nil {
		c.LastTransitionTime = &now
		*conds = append(*conds, c)
		return true
	}
	if old.Status != c.Status || old.LastTransitionTime == nil {
		c.LastTransitionTime = &now
	} else {
		c.LastTransitionTime = old.LastTransitionTime
	}
	if c.LastProbeTime == nil {
		c.LastProbeTime = old.LastProbeTime
	}
	changed := old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message || old.Severity != c.Severity
	*old = c
	return changed
}

// AggregateReady computes the Ready condition from the conditions of the
// given types: True when all are True; False when any is False (reason and
// message of the first False one); Unknown otherwise, including when one is
// missing (reason and message of the first such one).
func AggregateReady(conds []Condition, types []string) Condition {
	var unknown *Condition
	for _, t := range types {
		c := FindCondition(conds, t)
		switch {
		case c == nil:
			if unknown == nil {
				unknown = &Condition{Type: t, Reason: "Pending", Message: t + " has not been checked yet"}
			}
		case c.Status == metav1.ConditionFalse:
			return Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: c.Reason, Message: c.Message}
		case c.Status != metav1.ConditionTrue:
			if unknown == nil {
				unknown = c
			}
		}
	}
	if unknown != nil {
		return Condition{Type: ConditionReady, Status: metav1.ConditionUnknown, Reason: unknown.Reason, Message: unknown.Message}
	}
	return Condition{Type: ConditionReady, Status: metav1.ConditionTrue}
}
