package v1alpha1

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The annotation of a ConnectorClass that chooses how its connectors' proxy
// URLs are formed, and its values.
const (
	ProxyResolverAnnotation = "connectors.cpaas.io/proxy-resolver"
	// ProxyResolverHost (the default): http://c-<name>.<namespace>.svc.<domain>.
	ProxyResolverHost = "host"
	// ProxyResolverPath: <class proxy URL>/namespaces/<namespace>/connectors/<name>.
	ProxyResolverPath = "path"
)

// ProxySchemeAnnotation of a ConnectorClass whose spec.proxy.ref names a
// Service chooses the scheme of its proxy URL (ours, not the original's):
// "http" (the default, the original's port 80) or "https", the gateway's
// reverse proxy over TLS on port 443 behind a leaf of the gateway CA for
// the connector's proxy host, which clients that trust the mounted
// ca.cert accept without an insecure setting.
const ProxySchemeAnnotation = "connectors.io/proxy-scheme"

// RegistryLoginAnnotation "true" on a ConnectorClass (ours; the harbor
// class) makes the gateway log in to the registry with a basic-auth
// Secret's user name and password on the registries' path resolver
// (/v2/namespaces/<ns>/connectors/<name>/…), answering the registry's own
// challenge (Basic, or a token from its token service) as for a
// cpaas.io/distribution-registry-token Secret. Without it a basic-auth
// Secret is sent as Basic, whatever path the client chose.
const RegistryLoginAnnotation = "connectors.io/registry-login"

// ConnectorRef names a connector.
//
// +kubebuilder:object:generate=false
type ConnectorRef struct {
	// Namespace of the connector.
	Namespace string `json:"namespace"`
	// Name of the connector.
	Name string `json:"name"`
}

// Valid reports whether the reference can name a connector at all: a
// namespace that is a DNS label and a name that is a DNS subdomain, as the
// API server requires. Anything else ("." or "%2e%2e", say) is a bad
// request, never a connector that might appear later.
func (r ConnectorRef) Valid() bool {
	return len(validation.IsDNS1123Label(r.Namespace)) == 0 && len(validation.IsDNS1123Subdomain(r.Name)) == 0
}

// String is "namespace/name", the form of proxy user names.
func (r ConnectorRef) String() string { return r.Namespace + "/" + r.Name }

// Ref returns the connector's namespace and name.
func (c *Connector) Ref() ConnectorRef { return ConnectorRef{Namespace: c.Namespace, Name: c.Name} }

// ReferencedSecrets returns the names of the Secrets of its own namespace
// the connector reads: the credential (spec.auth.secretRef) and the CA
// bundle of its target (spec.caCertSecretRef).
func (c *Connector) ReferencedSecrets() []string {
	var out []string
	if ref := c.Spec.Auth.SecretRef; ref != nil && ref.Name != "" {
		out = append(out, ref.Name)
	}
	if ref := c.Spec.CACertSecretRef; ref != nil && ref.Name != "" {
		out = append(out, ref.Name)
	}
	return out
}

// ProxyAddress returns status.proxy.httpAddress.url, or "" before the
// reconciler published it.
func (c *Connector) ProxyAddress() string {
	if p := c.Status.Proxy; p != nil && p.HTTPAddress != nil {
		return p.HTTPAddress.URL
	}
	return ""
}

// ProxyURL puts the proxy user (the connectors as "namespace/name", comma
// separated, URL-encoded) and the token as password into a proxy address:
// the proxy-url of a mounted kubeconfig, or an HTTPS_PROXY value. An https
// address without a port (a class with connectors.io/proxy-scheme: https)
// becomes http on port 80: the gateway's forward proxy on the same host.
func ProxyURL(proxyAddress, token string, connectors ...ConnectorRef) (string, error) {
	if len(connectors) == 0 {
		return "", errors.New("a proxy URL names at least one connector")
	}
	u, err := url.Parse(proxyAddress)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("proxy address %q is not an absolute URL", proxyAddress)
	}
	if u.Scheme == "https" && u.Port() == "" {
		// The reverse proxy over TLS (connectors.io/proxy-scheme: https)
		// listens on 443 of the same host; its forward proxy is plain
		// HTTP on port 80.
		u.Scheme = "http"
	}
	users := make([]string, 0, len(connectors))
	for _, c := range connectors {
		users = append(users, c.String())
	}
	// url.UserPassword would leave "/" in the user name unescaped.
	return u.Scheme + "://" + url.QueryEscape(strings.Join(users, ",")) + ":" + url.QueryEscape(token) + "@" + u.Host + u.EscapedPath(), nil
}

// ErrNotUsable is wrapped by the errors of [Connector.Usable].
var ErrNotUsable = errors.New("connector not usable")

// notUsable is an error of Usable: a one-line message for the user.
type notUsable struct{ msg string }

func (e *notUsable) Error() string { return e.msg }
func (e *notUsable) Unwrap() error { return ErrNotUsable }

// oneLine keeps a condition's message on one line.
var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

// Usable is the one rule by which the gateway, the CSI driver and the
// control API decide whether a connector may be used: its Ready condition
// is True, its status describes its current spec (observedGeneration equals
// metadata.generation: an edited address is not trusted with the credential
// before the reconciler has checked it) and its proxy address is published.
// The error wraps [ErrNotUsable]; its message names the connector and the
// failing condition and says where to look.
func (c *Connector) Usable() error {
	ref := c.Ref()
	describe := fmt.Sprintf("see kubectl describe connector %s -n %s", c.Name, c.Namespace)
	ready := FindCondition(c.Status.Conditions, ConditionReady)
	switch {
	case ready == nil:
		return &notUsable{fmt.Sprintf("connector %s is not Ready: its status has no Ready condition yet; %s", ref, describe)}
	case ready.Status != metav1.ConditionTrue:
		return &notUsable{fmt.Sprintf("connector %s is not Ready: %s; %s", ref, failing(c.Status.Conditions, ready), describe)}
	case c.Status.ObservedGeneration < c.Generation:
		return &notUsable{fmt.Sprintf("connector %s changed (generation %d) and has not been checked again yet (its status describes generation %d); retry in a moment or %s",
			ref, c.Generation, c.Status.ObservedGeneration, describe)}
	case c.ProxyAddress() == "" && !proxyless(c):
		return &notUsable{fmt.Sprintf("connector %s has no proxy address yet; %s", ref, describe)}
	}
	return nil
}

// proxyless reports whether the connector's class declares no proxy
// (ProxyServiceReady True NonProxy): it is used without one.
func proxyless(c *Connector) bool {
	p := FindCondition(c.Status.Conditions, ConditionProxyServiceReady)
	return p != nil && p.Status == metav1.ConditionTrue && p.Reason == ReasonNonProxy
}

// failing describes the condition Ready fails on: the first False one of
// those it aggregates, else the first that is not True, else (a status that
// holds none of them) Ready itself.
func failing(conds []Condition, ready *Condition) string {
	var c *Condition
	for _, t := range ConnectorConditionTypes() {
		fc := FindCondition(conds, t)
		switch {
		case fc == nil || fc.Status == metav1.ConditionTrue:
		case fc.Status == metav1.ConditionFalse:
			c = fc
		case c == nil:
			c = fc
		}
		if c != nil && c.Status == metav1.ConditionFalse {
			break
		}
	}
	if c == nil {
		c = ready
	}
	s := c.Type + " is " + string(c.Status)
	switch {
	case c.Reason != "" && c.Message != "":
		s += " (" + c.Reason + ": " + oneLine.Replace(c.Message) + ")"
	case c.Reason != "":
		s += " (" + c.Reason + ")"
	case c.Message != "":
		s += " (" + oneLine.Replace(c.Message) + ")"
	}
	return s
}
