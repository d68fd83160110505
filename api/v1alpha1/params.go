package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Param is a named value given by a Connector for a parameter its class
// declares.
type Param struct {
	// Name is the parameter's name as declared by the class.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value is a string, a list of strings or a string map. Templates read
	// it as .Value.StringVal, .Value.ArrayVal or .Value.ObjectVal.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Value ParamValue `json:"value"`
}

// ParamType is the kind of value a parameter holds.
type ParamType string

// The parameter types.
const (
	ParamTypeString ParamType = "string"
	ParamTypeArray  ParamType = "array"
	ParamTypeObject ParamType = "object"
)

// ParamValue holds a string, a list of strings or a string map. In JSON it
// is the bare value ("x", ["a","b"] or {"k":"v"}), as in the manifests of
// the compatible system.
type ParamValue struct {
	// Type says which of the other fields is set.
	Type ParamType `json:"-"`
	// StringVal is the value of a string parameter.
	StringVal string `json:"-"`
	// ArrayVal is the value of an array parameter.
	ArrayVal []string `json:"-"`
	// ObjectVal is the value of an object parameter.
	ObjectVal map[string]string `json:"-"`
}

// NewStringParamValue returns a string ParamValue.
func NewStringParamValue(s string) ParamValue {
	return ParamValue{Type: ParamTypeString, StringVal: s}
}

// String returns the value as text: the string itself, or the JSON form of
// an array or object.
func (v ParamValue) String() string {
	if v.Type == ParamTypeString || v.Type == "" {
		return v.StringVal
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// MarshalJSON encodes the bare value.
func (v ParamValue) MarshalJSON() ([]byte, error) {
	switch v.Type {
	case ParamTypeArray:
		if v.ArrayVal == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(v.ArrayVal)
	case ParamTypeObject:
		if v.ObjectVal == nil {
			return []byte("{}"), nil
		}
		return json.Marshal(v.ObjectVal)
	default:
		return json.Marshal(v.StringVal)
	}
}

// UnmarshalJSON decodes a string, a list or a map. It never fails on valid
// JSON: the CRD stores any value (x-kubernetes-preserve-unknown-fields), and
// one value Go could not read would make every list of the kind unreadable
// (informers would stop). So a JSON null or number is kept as its text, and
// an element or entry that is not a string (a number, a nested list or map)
// as its JSON text.
func (v *ParamValue) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*v = ParamValue{}
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		v.Type = ParamTypeString
		return nil
	}
	switch data[0] {
	case '"':
		v.Type = ParamTypeString
		if err := json.Unmarshal(data, &v.StringVal); err != nil {
			return fmt.Errorf("param value: %w", err)
		}
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return fmt.Errorf("param value: %w", err)
		}
		v.Type, v.ArrayVal = ParamTypeArray, make([]string, 0, len(items))
		for _, item := range items {
			v.ArrayVal = append(v.ArrayVal, textOf(item))
		}
	case '{':
		if legacy, ok := legacyParamValue(data); ok {
			*v = legacy
			return nil
		}
		var entries map[string]json.RawMessage
		if err := json.Unmarshal(data, &entries); err != nil {
			return fmt.Errorf("param value: %w", err)
		}
		v.Type, v.ObjectVal = ParamTypeObject, make(map[string]string, len(entries))
		for k, e := range entries {
			v.ObjectVal[k] = textOf(e)
		}
	default:
		// Numbers and booleans written without quotes in YAML.
		v.Type = ParamTypeString
		v.StringVal = string(data)
	}
	return nil
}

// textOf is a JSON string's value, or any other JSON value's text.
func textOf(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// legacyParamValue decodes the struct form of the original's CRDs of
// controller-gen v0.16.1, {type, stringVal, arrayVal, objectVal}: an object
// whose "type" is string, array or object and whose other keys are among
// those three. (An object parameter with exactly those keys would be read
// the same way; no real value looks like that.)
func legacyParamValue(data []byte) (ParamValue, bool) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return ParamValue{}, false
	}
	var typ ParamType
	if raw, ok := fields["type"]; !ok || json.Unmarshal(raw, &typ) != nil {
		return ParamValue{}, false
	}
	if typ != ParamTypeString && typ != ParamTypeArray && typ != ParamTypeObject {
		return ParamValue{}, false
	}
	for k := range fields {
		if k != "type" && k != "stringVal" && k != "arrayVal" && k != "objectVal" {
			return ParamValue{}, false
		}
	}
	var legacy struct {
		StringVal string            `json:"stringVal"`
		ArrayVal  []string          `json:"arrayVal"`
		ObjectVal map[string]string `json:"objectVal"`
	}
	if err := json.Unmarshal(data, &legacy); err != nil {
		return ParamValue{}, false
	}
	return ParamValue{Type: typ, StringVal: legacy.StringVal, ArrayVal: legacy.ArrayVal, ObjectVal: legacy.ObjectVal}, true
}

// ParamSpec declares a parameter of a class, an auth type, an auth probe or
// a configuration.
type ParamSpec struct {
	// Name of the parameter.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Type of the parameter; "string" (the default) is what is supported today.
	// +optional
	Type ParamType `json:"type,omitempty"`
	// Description tells users what the parameter is for.
	// +optional
	Description string `json:"description,omitempty"`
	// Default is used when a connector gives no value; a parameter without a
	// default is required.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Default *ParamValue `json:"default,omitempty"`
	// Enum lists the allowed values.
	// +optional
	Enum []string `json:"enum,omitempty"`
	// Properties describe the keys of an object parameter.
	// +optional
	Properties map[string]PropertySpec `json:"properties,omitempty"`
	// Annotations carry UI metadata.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PropertySpec describes one key of an object parameter.
type PropertySpec struct {
	// Type of the value; "string" is supported.
	// +optional
	Type ParamType `json:"type,omitempty"`
}
