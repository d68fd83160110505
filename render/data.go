package render

import (
	"encoding/json"
	"fmt"

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

// configurationParams merges declared defaults and given values; a declared
// parameter without default and without value is an error.
func configurationParams(className string, configs []connectorsv1alpha1.Configuration, given map[string]string) (map[string]any, error) {
	out := map[string]any{}
	for _, c := range configs {
		for _, p := range c.Params {
			if v, ok := given[p.Name]; ok {
				out[p.Name] = v
				continue
			}
			if p.Default == nil {
				return nil, fmt.Errorf("%w: connector class %s, configuration %s needs the parameter %q (volume attribute configuration.params.%s)", ErrInvalid, className, c.Name, p.Name, p.Name)
			}
			out[p.Name] = paramValue(*p.Default)
		}
	}
	for k, v := range given {
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

// proxyURL is the first connector's proxy address with the user
// "ns/name[,ns/name...]" (URL-encoded) and the token as password.
func proxyURL(conns []*connectorsv1alpha1.Connector, token tokens.Token) (string, error) {
	refs := make([]connectorsv1alpha1.ConnectorRef, 0, len(conns))
	for _, c := range conns {
		if c.ProxyAddress() == "" {
			return "", fmt.Errorf("%w: connector %s has no proxy address yet", ErrInvalid, c.Ref())
		}
		refs = append(refs, c.Ref())
	}
	u, err := connectorsv1alpha1.ProxyURL(conns[0].ProxyAddress(), string(token), refs...)
	if err != nil {
		return "", fmt.Errorf("%w: connector %s: %w", ErrInvalid, conns[0].Ref(), err)
	}
	return u, nil
}

// templateData builds the data of docs/design.md §7.
func templateData(in Input, params map[string]any) map[string]any {
	conns := make([]any, 0, len(in.Connectors))
	for _, c := range in.Connectors {
		conns = append(conns, connectorData(c))
	}
	classProxy := ""
	if p := in.Class.Status.Proxy; p != nil && p.HTTPAddress != nil {
		classProxy = p.HTTPAddress.URL
	}
	return map[string]any{
		"connector":  conns[0],
		"connectors": conns,
		"connectorclass": map[string]any{
			"metadata":     map[string]any{"name": in.Class.Name},
			"proxyAddress": classProxy,
		},
		"context": map[string]any{
			"token": string(in.Token),
			"proxy": map[string]any{"caCert": string(in.ProxyCACert)},
		},
		"configurations": params,
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
		"metadata": map[string]any{
			"name": c.Name, "namespace": c.Namespace, "uid": string(c.UID),
			"labels": labels, "annotations": annotations,
		},
		"spec":   spec,
		"status": map[string]any{"proxyAddress": c.ProxyAddress()},
	}
}
