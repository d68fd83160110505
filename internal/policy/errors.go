package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// lineError is an error with a one-line message of its own, wrapping the
// error it was made from (for errors.As).
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }

func (e *lineError) Unwrap() error { return e.err }

// maxErrors bounds the compiler errors quoted in a message.
const maxErrors = 5

// compileError turns an error of PrepareForEval into a one-line error
// starting with prefix.
func compileError(prefix string, err error) error {
	return &lineError{msg: prefix + astMessage(err), err: err}
}

// astMessage is the one-line message of a parser's or compiler's error:
// position, code and message of each (at most maxErrors), without the
// details (source lines) OPA adds on further lines.
func astMessage(err error) string {
	errs := astErrors(err)
	if len(errs) == 0 {
		return oneLine(err.Error())
	}
	parts := make([]string, 0, min(len(errs), maxErrors)+1)
	for i, e := range errs {
		if i == maxErrors {
			parts = append(parts, fmt.Sprintf("and %d more", len(errs)-maxErrors))
			break
		}
		msg := e.Code + ": " + e.Message
		if e.Location != nil {
			msg = e.Location.File + ":" + strconv.Itoa(e.Location.Row) + ": " + msg
		}
		parts = append(parts, oneLine(msg))
	}
	return strings.Join(parts, "; ")
}

// astErrors returns the parser's or compiler's errors in err, which
// return both lists of errors and single ones.
func astErrors(err error) ast.Errors {
	var errs ast.Errors
	if errors.As(err, &errs) {
		return errs
	}
	var one *ast.Error
	if errors.As(err, &one) {
		return ast.Errors{one}
	}
	return nil
}

// oneLine folds every run of white space of s, new lines included, into one
// space.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// evalError turns an error of an evaluation into one that holds no value
// of the input. The message of a failed built-in function can hold its
// arguments, whatever they were derived from, so it is withheld; the
// other messages of OPA name types, rules and positions, and have any value
// of the input redacted all the same.
func evalError(err error, r *redactor) error {
	var te *topdown.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("policy: the evaluation failed: %s", oneLine(r.redact(err.Error())))
	}
	var msg string
	switch name, _, found := strings.Cut(te.Message, ": "); {
	case te.Code == topdown.ConflictErr:
		msg = conflictMessage(te.Message)
	case te.Code != topdown.BuiltinErr:
		msg = oneLine(r.redact(te.Message))
	case found && ast.BuiltinMap[name] != nil:
		msg = name + " failed (its message is withheld: it may hold a secret)"
	default:
		msg = "a built-in function failed (its message is withheld: it may hold a secret)"
	}
	// A new error, without the one of the built-in function that te wraps.
	return fmt.Errorf("policy: the evaluation failed: %w", &topdown.Error{
		Code:     te.Code,
		Message:  msg,
		Location: te.Location,
	})
}

// conflictMessage keeps of a conflict's message the rule and the
// positions of the rules that conflict: OPA lists their values too, one a
// line ("rule data.proxy.auth produced conflicting values:\n  <value> at
// policy.rego:3\n  ...").
func conflictMessage(msg string) string {
	lines := strings.Split(msg, "\n  ")
	head := strings.TrimSuffix(lines[0], ":")
	var at []string
	for _, line := range lines[1:] {
		if i := strings.LastIndex(line, " at "); i >= 0 {
			at = append(at, line[i+len(" at "):])
		}
	}
	if len(at) == 0 {
		return oneLine(head)
	}
	return oneLine(head) + " at " + strings.Join(at, ", ") + " (the values are withheld)"
}

// minSecret is the length from which values are redacted, and minField
// that of the space-separated fields of header values (the token of
// "Bearer <token>"): shorter ones would garble the message and hide
// little.
const (
	minSecret = 4
	minField  = 8
)

// maxSecrets bounds the values a redactor looks for.
const maxSecrets = 1024

// redactor replaces the values of the data and of the request (headers,
// their space-separated fields, query parameters, the strings of the body)
// in error messages by "[redacted]".
type redactor struct {
	replacer *strings.Replacer
}

// newRedactor builds the redactor of one evaluation; only on its way to
// an error, so it can take its time.
func newRedactor(req Request, data map[string]string) *redactor {
	var values []string
	add := func(s string) {
		if len(s) >= minSecret && len(values) < maxSecrets {
			values = append(values, s)
		}
	}
	for _, v := range data {
		add(v)
	}
	for _, vs := range req.Headers {
		for _, v := range vs {
			add(v)
			for _, f := range strings.Fields(v) {
				if len(f) >= minField && f != v {
					add(f)
				}
			}
		}
	}
	for _, vs := range req.Query {
		for _, v := range vs {
			add(v)
		}
	}
	addStrings(req.Body, add)
	// Longest first: a replacer tries its old strings in argument order.
	slices.SortFunc(values, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	values = slices.Compact(values)
	pairs := make([]string, 0, 2*len(values))
	for _, v := range values {
		pairs = append(pairs, v, "[redacted]")
	}
	return &redactor{replacer: strings.NewReplacer(pairs...)}
}

// addStrings calls add with the strings (keys too) of a JSON value.
func addStrings(v any, add func(string)) {
	switch v := v.(type) {
	case string:
		add(v)
	case []any:
		for _, x := range v {
			addStrings(x, add)
		}
	case map[string]any:
		for k, x := range v {
			add(k)
			addStrings(x, add)
		}
	}
}

// redact replaces the values in s.
func (r *redactor) redact(s string) string {
	return r.replacer.Replace(s)
}
