package v1alpha1

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Reasons of ConnectorClassReady False when the connector does not meet its
// class's contract (the original refuses such connectors at admission).
const (
	// ReasonInvalidParams: spec.params names a parameter the class does not
	// declare, lacks a required one, or gives a value outside its enum.
	ReasonInvalidParams = "InvalidParams"
	// ReasonInvalidAddressExtensions: spec.addressExtensions names one the
	// class does not declare, lacks a required one, or gives a value that is
	// not an http(s) URL other than spec.address.
	ReasonInvalidAddressExtensions = "InvalidAddressExtensions"
)

// ContractError says how a connector breaks its class's contract.
//
// +kubebuilder:object:generate=false
type ContractError struct {
	// Reason is ReasonInvalidParams or ReasonInvalidAddressExtensions.
	Reason string
	// Message says what is wrong and what the class declares.
	Message string
}

func (e *ContractError) Error() string { return e.Message }

// CheckContract checks a connector's params and address extensions
// against its class, as the original's admission does: declared names only,
// every one without a default given, values in their enum; extension
// values absolute http(s) URLs other than spec.address.
func CheckContract(c *Connector, class *ConnectorClass) *ContractError {
	if err := checkParams("spec.params", c.Spec.Params, class.Spec.Params, class.Name); err != nil {
		return &ContractError{Reason: ReasonInvalidParams, Message: err.Error()}
	}
	declared := names(class.Spec.AddressExtensions)
	for _, e := range c.Spec.AddressExtensions {
		if !slices.Contains(declared, e.Name) {
			return &ContractError{Reason: ReasonInvalidAddressExtensions, Message: fmt.Sprintf("spec.addressExtensions names %q, which ConnectorClass %s does not declare (it declares: %s)", e.Name, class.Name, list(declared))}
		}
		u, err := url.Parse(e.Value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &ContractError{Reason: ReasonInvalidAddressExtensions, Message: fmt.Sprintf("spec.addressExtensions %s must be an absolute http or https URL, for example https://api.example.com", e.Name)}
		}
		if strings.TrimSuffix(e.Value, "/") == strings.TrimSuffix(c.Spec.Address, "/") {
			return &ContractError{Reason: ReasonInvalidAddressExtensions, Message: fmt.Sprintf("spec.addressExtensions %s equals spec.address: give the other address of the target", e.Name)}
		}
	}
	for _, p := range class.Spec.AddressExtensions {
		if p.Default == nil && !slices.ContainsFunc(c.Spec.AddressExtensions, func(e AddressExtension) bool { return e.Name == p.Name }) {
			return &ContractError{Reason: ReasonInvalidAddressExtensions, Message: fmt.Sprintf("spec.addressExtensions lacks %q, which ConnectorClass %s requires (it has no default)", p.Name, class.Name)}
		}
	}
	return nil
}

// checkParams checks given values against declarations.
func checkParams(field string, given []Param, specs []ParamSpec, className string) error {
	declared := names(specs)
	for _, p := range given {
		i := slices.Index(declared, p.Name)
		if i < 0 {
			return fmt.Errorf("%s names %q, which ConnectorClass %s does not declare (it declares: %s)", field, p.Name, className, list(declared))
		}
		if enum := specs[i].Enum; len(enum) > 0 && !slices.Contains(enum, p.Value.String()) {
			return fmt.Errorf("%s %s is %q, want one of %s", field, p.Name, p.Value.String(), strings.Join(enum, ", "))
		}
	}
	for _, s := range specs {
		if s.Default == nil && !slices.ContainsFunc(given, func(p Param) bool { return p.Name == s.Name }) {
			return fmt.Errorf("%s lacks %q, which ConnectorClass %s requires (it has no default)", field, s.Name, className)
		}
	}
	return nil
}

// WithClassDefaults returns a copy of c whose spec.params and
// spec.addressExtensions also hold the class's defaults for what c omits:
// what templates and probes see, as in the original.
func (c *Connector) WithClassDefaults(class *ConnectorClass) *Connector {
	out := c.DeepCopy()
	if class == nil {
		return out
	}
	for _, s := range class.Spec.Params {
		if s.Default != nil && !slices.ContainsFunc(out.Spec.Params, func(p Param) bool { return p.Name == s.Name }) {
			out.Spec.Params = append(out.Spec.Params, Param{Name: s.Name, Value: *s.Default})
		}
	}
	for _, s := range class.Spec.AddressExtensions {
		if s.Default != nil && !slices.ContainsFunc(out.Spec.AddressExtensions, func(e AddressExtension) bool { return e.Name == s.Name }) {
			out.Spec.AddressExtensions = append(out.Spec.AddressExtensions, AddressExtension{Name: s.Name, Value: s.Default.String()})
		}
	}
	return out
}

// Addresses returns spec.address and the address extensions' values, with
// the class's default for an extension the connector omits (class may be
// nil): the targets whose requests get the connector's credential.
func (c *Connector) Addresses(class *ConnectorClass) []string {
	out := make([]string, 0, 1+len(c.Spec.AddressExtensions))
	out = append(out, c.Spec.Address)
	for _, e := range c.Spec.AddressExtensions {
		out = append(out, e.Value)
	}
	if class != nil {
		for _, s := range class.Spec.AddressExtensions {
			if s.Default != nil && !slices.ContainsFunc(c.Spec.AddressExtensions, func(e AddressExtension) bool { return e.Name == s.Name }) {
				out = append(out, s.Default.String())
			}
		}
	}
	return out
}

func names(specs []ParamSpec) []string {
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		out = append(out, s.Name)
	}
	return out
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
