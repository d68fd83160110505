package tokens

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Token is a bearer token. Its String, MarshalLog and LogValue methods
// redact it, so a Token that reaches a log line or an error message by
// accident prints as "[redacted]".
type Token string

const redacted = "[redacted]"

// String redacts the token. Use string(t) where the raw value is needed.
func (Token) String() string { return redacted }

// GoString redacts the token in %#v.
func (Token) GoString() string { return redacted }

// MarshalLog redacts the token in logr output.
func (Token) MarshalLog() any { return redacted }

// LogValue redacts the token in slog output.
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// Identity is who a validated token speaks for: a ServiceAccount, and the
// Pod the token is bound to when it is bound to one.
type Identity struct {
	// Namespace of the ServiceAccount (and of the Pod).
	Namespace string `json:"namespace"`
	// ServiceAccountName is the ServiceAccount's name.
	ServiceAccountName string `json:"serviceAccountName"`
	// ServiceAccountUID is the ServiceAccount's UID.
	ServiceAccountUID string `json:"serviceAccountUID,omitempty"`
	// PodName is the bound Pod's name; empty for unbound tokens.
	PodName string `json:"podName,omitempty"`
	// PodUID is the bound Pod's UID; empty for unbound tokens.
	PodUID string `json:"podUID,omitempty"`
	// ExpiresAt is the token's exp claim.
	ExpiresAt time.Time `json:"expiresAt"`
}

// serviceAccountPrefix starts the user name of every ServiceAccount.
const serviceAccountPrefix = "system:serviceaccount:"

// Username is the ServiceAccount's user name as the API server knows it,
// system:serviceaccount:<namespace>:<name>.
func (id Identity) Username() string {
	return serviceAccountPrefix + id.Namespace + ":" + id.ServiceAccountName
}

// Groups are the groups the API server puts every ServiceAccount of the
// namespace in.
func (id Identity) Groups() []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + id.Namespace, "system:authenticated"}
}

// String names the identity for logs and audit: the ServiceAccount and, if
// bound, the Pod.
func (id Identity) String() string {
	if id.PodName != "" {
		return fmt.Sprintf("%s/%s (pod %s)", id.Namespace, id.ServiceAccountName, id.PodName)
	}
	return id.Namespace + "/" + id.ServiceAccountName
}

// parseServiceAccountUsername splits system:serviceaccount:<ns>:<name>.
func parseServiceAccountUsername(user string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(user, serviceAccountPrefix)
	if !found {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	return namespace, name, ok && namespace != "" && name != "" && !strings.Contains(name, ":")
}
