package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Request is what a module sees of the client's request, as input.request.
type Request struct {
	// Headers are the request's headers (input.request.headers), names
	// canonicalized as by textproto.CanonicalMIMEHeaderKey.
	Headers map[string][]string
	// Body is the request's body decoded from JSON, as encoding/json
	// decodes into an any (input.request.body); nil when the body is not
	// JSON, and then input.request.body is undefined.
	Body any
	// Query holds the query parameters (input.request.query).
	Query map[string][]string
	// Method, Path and Host are the request's method, URL path and host
	// (input.request.method, .path and .host).
	Method, Path, Host string
}

// Injection is the result of a generator: the credentials the gateway puts
// into the upstream request.
type Injection struct {
	// Position is where they go: "header", "query" or "body".
	Position string
	// ContentType is the body's content type when the module names one,
	// such as "application/json"; empty otherwise.
	ContentType string
	// Auth maps header, query parameter or body field names to their
	// values.
	Auth map[string]string
}

// Positions of an Injection.
const (
	positionHeader = "header"
	positionQuery  = "query"
	positionBody   = "body"
)

// Token runs an authExtractor module; "" with nil error when auth or
// auth.token is undefined/empty. The module sees req as input.request; its
// auth must be an object whose token, when present, is a string.
func (e *Engine) Token(ctx context.Context, module string, req Request) (string, error) {
	value, defined, err := e.eval(ctx, module, req, nil, false)
	if err != nil || !defined {
		return "", err
	}
	auth, ok := value.(map[string]any)
	if !ok {
		return "", fmt.Errorf("policy: auth must be an object, got %s", typeName(value))
	}
	token, ok := auth["token"]
	if !ok {
		return "", nil
	}
	s, ok := token.(string)
	if !ok {
		return "", fmt.Errorf("policy: auth.token must be a string, got %s", typeName(token))
	}
	return s, nil
}

// Generate runs a generator module; error if undefined or shape wrong
// (position not one of header|query|body, auth not an object of strings).
// The module sees data as input.data and req as input.request.
func (e *Engine) Generate(ctx context.Context, module string, data map[string]string, req Request) (*Injection, error) {
	value, defined, err := e.eval(ctx, module, req, data, true)
	if err != nil {
		return nil, err
	}
	if !defined {
		return nil, errors.New("policy: the generator left auth undefined")
	}
	// Shape errors quote names and positions the module computed, perhaps
	// from the data or the request.
	quote := func(s string) string { return truncate(newRedactor(req, data).redact(s)) }
	return injection(value, quote)
}

// injection checks the shape of a generator's auth; quote makes the
// strings of its value fit for an error message.
func injection(value any, quote func(string) string) (*Injection, error) {
	auth, ok := value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy: auth must be an object, got %s", typeName(value))
	}
	var inj Injection
	position, ok := auth["position"]
	if !ok {
		return nil, errors.New(`policy: auth.position is missing, want "header", "query" or "body"`)
	}
	s, isString := position.(string)
	switch {
	case !isString:
		return nil, fmt.Errorf(`policy: auth.position must be "header", "query" or "body", got %s`, typeName(position))
	case s == positionHeader, s == positionQuery, s == positionBody:
		inj.Position = s
	case plainWord(s):
		return nil, fmt.Errorf(`policy: auth.position must be "header", "query" or "body", got %q`, quote(s))
	default:
		// Not a mistyped position: perhaps computed from the data.
		return nil, fmt.Errorf(`policy: auth.position must be "header", "query" or "body", got a string of %d bytes`, len(s))
	}
	if ct, ok := auth["contentType"]; ok {
		s, isString := ct.(string)
		if !isString {
			return nil, fmt.Errorf("policy: auth.contentType must be a string, got %s", typeName(ct))
		}
		inj.ContentType = s
	}
	fieldsValue, ok := auth["auth"]
	if !ok {
		return nil, errors.New("policy: auth.auth is missing, want an object of strings")
	}
	fields, ok := fieldsValue.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy: auth.auth must be an object of strings, got %s", typeName(fieldsValue))
	}
	inj.Auth = make(map[string]string, len(fields))
	// In name order, so that the error names the same field every time.
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s, isString := fields[name].(string)
		if !isString {
			return nil, fmt.Errorf("policy: auth.auth[%q] must be a string, got %s", quote(name), typeName(fields[name]))
		}
		inj.Auth[name] = s
	}
	return &inj, nil
}

// eval evaluates data.proxy.auth of module within the engine's timeout;
// input.data is data when withData is set.
func (e *Engine) eval(ctx context.Context, module string, req Request, data map[string]string, withData bool) (any, bool, error) {
	query, err := e.prepare(ctx, module)
	if err != nil {
		return nil, false, err
	}
	input, err := inputValue(req, data, withData)
	if err != nil {
		return nil, false, err
	}
	evalCtx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	rs, err := query.Eval(evalCtx, rego.EvalParsedInput(input))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, false, fmt.Errorf("policy: the evaluation was abandoned: %w", ctx.Err())
	case errors.Is(evalCtx.Err(), context.DeadlineExceeded):
		return nil, false, fmt.Errorf("policy: the evaluation took longer than %s: %w", e.timeout, context.DeadlineExceeded)
	default:
		return nil, false, evalError(err, newRedactor(req, data))
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, false, nil
	}
	return rs[0].Expressions[0].Value, true, nil
}

// inputValue is the input document: {"request": ...}, and "data" when
// withData is set.
func inputValue(req Request, data map[string]string, withData bool) (ast.Value, error) {
	request := ast.NewObjectWithCapacity(6)
	request.Insert(ast.StringTerm("headers"), stringLists(canonicalHeaders(req.Headers)))
	request.Insert(ast.StringTerm("query"), stringLists(req.Query))
	request.Insert(ast.StringTerm("method"), ast.StringTerm(req.Method))
	request.Insert(ast.StringTerm("path"), ast.StringTerm(req.Path))
	request.Insert(ast.StringTerm("host"), ast.StringTerm(req.Host))
	if req.Body != nil {
		body, err := ast.InterfaceToValue(req.Body)
		if err != nil {
			return nil, fmt.Errorf("policy: the request body, a %T, is not a JSON value", req.Body)
		}
		request.Insert(ast.StringTerm("body"), ast.NewTerm(body))
	}
	input := ast.NewObjectWithCapacity(2)
	input.Insert(ast.StringTerm("request"), ast.NewTerm(request))
	if withData {
		obj := ast.NewObjectWithCapacity(len(data))
		for k, v := range data {
			obj.Insert(ast.StringTerm(k), ast.StringTerm(v))
		}
		input.Insert(ast.StringTerm("data"), ast.NewTerm(obj))
	}
	return input, nil
}

// canonicalHeaders returns h with canonical names, merging the values of
// names that differ only in case; h itself when its names are canonical.
func canonicalHeaders(h map[string][]string) map[string][]string {
	canonical := true
	for name := range h {
		if textproto.CanonicalMIMEHeaderKey(name) != name {
			canonical = false
			break
		}
	}
	if canonical {
		return h
	}
	out := make(map[string][]string, len(h))
	// In name order, so that merged values keep one order.
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c := textproto.CanonicalMIMEHeaderKey(name)
		out[c] = append(out[c], h[name]...)
	}
	return out
}

// stringLists converts names to lists of values.
func stringLists(m map[string][]string) *ast.Term {
	obj := ast.NewObjectWithCapacity(len(m))
	for k, values := range m {
		terms := make([]*ast.Term, len(values))
		for i, v := range values {
			terms[i] = ast.StringTerm(v)
		}
		obj.Insert(ast.StringTerm(k), ast.ArrayTerm(terms...))
	}
	return ast.NewTerm(obj)
}

// typeName names the JSON type of a result value.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// plainWord reports whether s is a short word of letters, '-' and '_',
// such as a mistyped position, and no secret.
func plainWord(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// truncate shortens s to 32 runes.
func truncate(s string) string {
	const limit = 32
	n := 0
	for i := range s {
		if n == limit {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
