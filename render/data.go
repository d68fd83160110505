package render

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

func findConfiguration(class *connectorsv1alpha1.ConnectorClass, name string) (connectorsv1alpha1.Configuration, bool) {
	for _, c := range class.Spec.Configurations {
		if c.Name == name {
			return c, true
		}
	}
	return connectorsv1alpha1.Configuration{}, false
}

func configurationNames(class *connectorsv1alpha1.ConnectorClass) []string {
	var names []string
	for _, c := range class.Spec.Configurations {
		names = append(names, c.Name)
	}
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

// configurationParams returns .configurations of configuration c: its
// declared parameters with the given values (the flat form first, then the
// JSON form keyed by c's name) or their defaults. A declared parameter
// without either, a value outside its enum, or a JSON value for a parameter
// c does not declare is an error; a configuration that declares none takes
// what it is given (the original's jfrog class reads undeclared ones).
func configurationParams(className string, c connectorsv1alpha1.Configuration, flat map[string]string, byConfig map[string]string) (map[string]any, error) {
	given := make(map[string]string, len(flat)+len(byConfig))
	for k, v := range flat {
		given[k] = v
	}
	for k, v := range byConfig {
		given[k] = v
	}
	out := map[string]any{}
	if len(c.Params) == 0 {
		for k, v := range given {
			out[k] = v
		}
		return out, nil
	}
	declared := make([]string, 0, len(c.Params))
	for _, p := range c.Params {
		declared = append(declared, p.Name)
		v, ok := given[p.Name]
		switch {
		case ok && len(p.Enum) > 0 && !slices.Contains(p.Enum, v):
			return nil, fmt.Errorf("%w: connector class %s, configuration %s: parameter %q is %q, want one of %s", ErrInvalid, className, c.Name, p.Name, v, strings.Join(p.Enum, ", "))
		case ok:
			out[p.Name] = v
		case p.Default != nil:
			out[p.Name] = paramValue(*p.Default)
		default:
			return nil, fmt.Errorf("%w: connector class %s, configuration %s needs the parameter %q (volume attribute configuration.params, for example {\"%s\":{\"%s\":\"VALUE\"}})", ErrInvalid, className, c.Name, p.Name, c.Name, p.Name)
		}
	}
	for k := range byConfig {
		if !slices.Contains(declared, k) {
			return nil, fmt.Errorf("%w: connector class %s, configuration %s declares no parameter %q (it declares: %s)", ErrInvalid, className, c.Name, k, strings.Join(declared, ", "))
		}
	}
	// Flat values the configuration does not declare stay available, as
	// before the JSON form.
	for k, v := range flat {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out, nil
}

func paramValue(v connectorsv1alpha1.ParamValue) any {
	switch v.Type {
	case connectorsv1alpha1.ParamTypeArray:
		return v.ArrayVal
	case connectorsv1alpha1.ParamTypeObject:
		return v.ObjectVal
	default:
		return v.StringVal
	}
}

// classGroup is the connectors of one class, in the order given.
type classGroup struct {
	class *connectorsv1alpha1.ConnectorClass
	conns []*connectorsv1alpha1.Connector
}

// job is one configuration to render for one class's connectors.
type job struct {
	group  classGroup
	config connectorsv1alpha1.Configuration
	params map[string]any
}

// classGroups groups the connectors by class, classes in order of their
// first connector.
func classGroups(in Input) ([]classGroup, error) {
	var out []classGroup
	for _, c := range in.Connectors {
		class := in.Class
		if in.Classes != nil {
			var ok bool
			if class, ok = in.Classes[c.Spec.ConnectorClassName]; !ok {
				return nil, fmt.Errorf("%w: connector %s: its class %s was not given", ErrInvalid, c.Ref(), c.Spec.ConnectorClassName)
			}
		}
		if i := slices.IndexFunc(out, func(g classGroup) bool { return g.class.Name == class.Name }); i >= 0 {
			out[i].conns = append(out[i].conns, c)
			continue
		}
		out = append(out, classGroup{class: class, conns: []*connectorsv1alpha1.Connector{c}})
	}
	return out, nil
}

// classesOf names the classes for messages.
func classesOf(groups []classGroup) string {
	names := make([]string, 0, len(groups))
	for _, g := range groups {
		names = append(names, g.class.Name)
	}
	if len(names) == 1 {
		return "connector class " + names[0]
	}
	return "connector classes " + strings.Join(names, ", ")
}

// allConfigurationNames lists the configurations of every class.
func allConfigurationNames(groups []classGroup) []string {
	var out []string
	for _, g := range groups {
		for _, n := range configurationNames(g.class) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// hasProxy reports whether the class declares a proxy.
func hasProxy(class *connectorsv1alpha1.ConnectorClass) bool { return class.Spec.Proxy != nil }

// proxyURL is host's proxy address with the user "ns/name[,ns/name...]"
// of every connector (URL-encoded) and the token as password.
func proxyURL(host *connectorsv1alpha1.Connector, conns []*connectorsv1alpha1.Connector, token tokens.Token) (string, error) {
	if host.ProxyAddress() == "" {
		return "", fmt.Errorf("%w: connector %s has no proxy address yet", ErrInvalid, host.Ref())
	}
	refs := make([]connectorsv1alpha1.ConnectorRef, 0, len(conns))
	for _, c := range conns {
		refs = append(refs, c.Ref())
	}
	u, err := connectorsv1alpha1.ProxyURL(host.ProxyAddress(), string(token), refs...)
	if err != nil {
		return "", fmt.Errorf("%w: connector %s: %w", ErrInvalid, host.Ref(), err)
	}
	return u, nil
}

// templateData builds the data of docs/design.md §7 for the connectors of
// one class; the caller sets "configurations" per configuration.
func templateData(in Input, g classGroup) map[string]any {
	conns := make([]any, 0, len(g.conns))
	for _, c := range g.conns {
		conns = append(conns, connectorData(c.WithClassDefaults(g.class))) // the class's defaults for what it omits
	}
	classProxy := ""
	if p := g.class.Status.Proxy; p != nil && p.HTTPAddress != nil {
		classProxy = p.HTTPAddress.URL
	}
	return map[string]any{
		"connector":  conns[0],
		"connectors": conns,
		"connectorclass": map[string]any{
			"metadata":     map[string]any{"name": g.class.Name},
			"proxyAddress": classProxy,
		},
		"context": map[string]any{
			"token": string(in.Token),
			"proxy": map[string]any{"caCert": string(in.ProxyCACert)},
		},
	}
}

func connectorData(c *connectorsv1alpha1.Connector) map[string]any {
	var spec map[string]any
	// The spec's JSON form gives templates the manifest's field names.
	if b, err := json.Marshal(c.Spec); err == nil {
		_ = json.Unmarshal(b, &spec)
	}
	if spec == nil {
		spec = map[string]any{}
	}
	labels, annotations := map[string]any{}, map[string]any{}
	for k, v := range c.Labels {
		labels[k] = v
	}
	for k, v := range c.Annotations {
		annotations[k] = v
	}
	return map[string]any{
		// name and namespace at the top too: one of the original's
		// documents reads .connectors[].name.
		"name": c.Name, "namespace": c.Namespace,
		"metadata": map[string]any{
			"name": c.Name, "namespace": c.Namespace, "uid": string(c.UID),
			"labels": labels, "annotations": annotations,
		},
		"spec":   spec,
		"status": map[string]any{"proxyAddress": c.ProxyAddress()},
	}
}
