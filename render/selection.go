package render

import (
	"fmt"
	"strings"
)

// MaxFileNameLength bounds a file name (the usual NAME_MAX).
const MaxFileNameLength = 255

// Selection is a parsed configuration.names value.
type Selection struct {
	// Configurations are the chosen configuration names, in order.
	Configurations []string
	// Excluded are the file names to leave out.
	Excluded []string
}

// ParseSelection parses a comma-separated configuration.names value.
func ParseSelection(s string) (Selection, error) {
	var sel Selection
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if name, ok := strings.CutPrefix(part, "!"); ok {
			if err := ValidateFileName(name); err != nil {
				return Selection{}, fmt.Errorf("configuration.names: exclusion %q: %w", part, err)
			}
			sel.Excluded = append(sel.Excluded, name)
			continue
		}
		if seen[part] {
			continue
		}
		seen[part] = true
		sel.Configurations = append(sel.Configurations, part)
	}
	return sel, nil
}

// ValidateFileName checks that name can be a file in the flat mount root:
// not empty, no "/", not starting with ".." (the atomic writer's own
// entries), no NUL, at most MaxFileNameLength bytes. The error wraps
// ErrInvalid.
func ValidateFileName(name string) error {
	switch {
	case name == "" || name == ".":
		return fmt.Errorf("%w: file name %q is empty", ErrInvalid, name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: file name %q must not contain / or NUL", ErrInvalid, name)
	case strings.HasPrefix(name, ".."):
		return fmt.Errorf("%w: file name %q must not start with two dots", ErrInvalid, name)
	case len(name) > MaxFileNameLength:
		return fmt.Errorf("%w: file name %.40q... is longer than %d bytes", ErrInvalid, name, MaxFileNameLength)
	}
	return nil
}
