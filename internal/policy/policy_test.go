package policy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	privateTokenExtractor = `package proxy

auth := {"token": input.request.headers["Private-Token"][0]}
`
	headerGenerator = `package proxy

auth := {"position": "header", "auth": {"Private-Token": input.data.token}}
`
)

// checkMessage fails t unless err is one line starting with "policy: ".
func checkMessage(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "policy: ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line starting with \"policy: \"", msg)
	}
}

func TestAnAuthExtractorFindsTheClientsToken(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("alice:basic-pass"))
	for _, tt := range []struct {
		name   string
		module string
		req    Request
		want   string
	}{
		{
			name:   "a Private-Token header yields its value",
			module: privateTokenExtractor,
			req:    Request{Headers: map[string][]string{"Private-Token": {"glpat-1"}}},
			want:   "glpat-1",
		},
		{
			name:   "a lower-case header name is canonicalized",
			module: privateTokenExtractor,
			req:    Request{Headers: map[string][]string{"private-token": {"glpat-2"}}},
			want:   "glpat-2",
		},
		{
			name: "a Basic header yields its password through base64 and split",
			module: `package proxy

auth := {"token": password} if {
	value := input.request.headers.Authorization[0]
	startswith(value, "Basic ")
	[_, password] := split(base64.decode(substring(value, 6, -1)), ":")
}
`,
			req:  Request{Headers: map[string][]string{"Authorization": {"Basic " + basic}}},
			want: "basic-pass",
		},
		{
			name: "a query parameter yields its value",
			module: `package proxy

auth := {"token": input.request.query.private_token[0]}
`,
			req:  Request{Query: map[string][]string{"private_token": {"from-query"}}},
			want: "from-query",
		},
		{
			name: "a field of a JSON body yields its value",
			module: `package proxy

auth := {"token": input.request.body.credentials.token}
`,
			req:  Request{Body: map[string]any{"credentials": map[string]any{"token": "from-body"}}},
			want: "from-body",
		},
		{
			name: "a v0 module without if works",
			module: `package proxy

auth = {"token": t} {
	t := input.request.headers["X-Token"][0]
}
`,
			req:  Request{Headers: map[string][]string{"X-Token": {"v0-token"}}},
			want: "v0-token",
		},
		{
			name: "method, path and host are in the input",
			module: `package proxy

auth := {"token": concat(" ", [input.request.method, input.request.host, input.request.path])}
`,
			req:  Request{Method: "GET", Host: "git.example.com", Path: "/api/v4/user"},
			want: "GET git.example.com /api/v4/user",
		},
		{
			name:   "a request without the header leaves auth undefined: no token",
			module: privateTokenExtractor,
			req:    Request{Headers: map[string][]string{"Accept": {"*/*"}}},
			want:   "",
		},
		{
			name:   "a body that is not JSON is absent: no token",
			module: "package proxy\n\nauth := {\"token\": input.request.body.token}\n",
			req:    Request{},
			want:   "",
		},
		{
			name:   "an auth without token yields no token",
			module: "package proxy\n\nauth := {}\n",
			want:   "",
		},
		{
			name:   "an empty token is no token",
			module: "package proxy\n\nauth := {\"token\": \"\"}\n",
			want:   "",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(Options{})
			if err := e.Check(tt.module); err != nil {
				t.Fatalf("Check: %v", err)
			}
			got, err := e.Token(t.Context(), tt.module, tt.req)
			if err != nil || got != tt.want {
				t.Errorf("Token = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestAnAuthExtractorOfTheWrongShapeFails(t *testing.T) {
	for _, tt := range []struct{ name, module, want string }{
		{"an auth that is no object fails", "package proxy\n\nauth := \"x\"\n", "auth must be an object, got a string"},
		{"a token that is no string fails", "package proxy\n\nauth := {\"token\": 7}\n", "auth.token must be a string, got a number"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{}).Token(t.Context(), tt.module, Request{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Token error %v, want one with %q", err, tt.want)
			}
			checkMessage(t, err)
		})
	}
}

func TestAGeneratorYieldsTheInjection(t *testing.T) {
	data := map[string]string{"token": "glpat-secret", "username": "alice", "password": "pw-secret"}
	for _, tt := range []struct {
		name   string
		module string
		want   Injection
	}{
		{
			name:   "a generator in header position yields Private-Token",
			module: headerGenerator,
			want:   Injection{Position: "header", Auth: map[string]string{"Private-Token": "glpat-secret"}},
		},
		{
			name: "a generator in query position yields a parameter",
			module: `package proxy

auth := {"position": "query", "auth": {"private_token": input.data.token}}
`,
			want: Injection{Position: "query", Auth: map[string]string{"private_token": "glpat-secret"}},
		},
		{
			name: "a generator in body position yields fields and a JSON content type",
			module: `package proxy

auth := {
	"position": "body",
	"contentType": "application/json",
	"auth": {"username": input.data.username, "password": input.data.password},
}
`,
			want: Injection{Position: "body", ContentType: "application/json", Auth: map[string]string{"username": "alice", "password": "pw-secret"}},
		},
		{
			name: "a v0 generator without if yields a Bearer header",
			module: `package proxy

auth = {"position": "header", "auth": {"Authorization": concat(" ", ["Bearer", input.data.token])}} {
	input.data.token != ""
}
`,
			want: Injection{Position: "header", Auth: map[string]string{"Authorization": "Bearer glpat-secret"}},
		},
		{
			name: "a v1 generator with if yields basic auth",
			module: `package proxy

auth := {"position": "header", "auth": {"Authorization": concat(" ", ["Basic", creds])}} if {
	creds := base64.encode(concat(":", [input.data.username, input.data.password]))
}
`,
			want: Injection{Position: "header", Auth: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw-secret"))}},
		},
		{
			name: "a generator sees the request",
			module: `package proxy

auth := {"position": "header", "auth": {"X-Method": input.request.method}}
`,
			want: Injection{Position: "header", Auth: map[string]string{"X-Method": "POST"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(Options{}).Generate(t.Context(), tt.module, data, Request{Method: "POST"})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if got.Position != tt.want.Position || got.ContentType != tt.want.ContentType || fmt.Sprint(got.Auth) != fmt.Sprint(tt.want.Auth) {
				t.Errorf("Generate = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestAGeneratorOfTheWrongShapeFails(t *testing.T) {
	for _, tt := range []struct{ name, module, want string }{
		{
			name:   "an undefined auth fails",
			module: "package proxy\n\nauth := {\"position\": \"header\", \"auth\": {}} if {\n\tinput.data.missing\n}\n",
			want:   "policy: the generator left auth undefined",
		},
		{
			name:   "a position that is not header, query or body fails",
			module: "package proxy\n\nauth := {\"position\": \"cookie\", \"auth\": {\"a\": \"b\"}}\n",
			want:   `auth.position must be "header", "query" or "body", got "cookie"`,
		},
		{
			name:   "a missing position fails",
			module: "package proxy\n\nauth := {\"auth\": {\"a\": \"b\"}}\n",
			want:   "auth.position is missing",
		},
		{
			name:   "an auth value that is not a string fails",
			module: "package proxy\n\nauth := {\"position\": \"header\", \"auth\": {\"X-Count\": 1}}\n",
			want:   `auth.auth["X-Count"] must be a string, got a number`,
		},
		{
			name:   "an auth.auth that is not an object fails",
			module: "package proxy\n\nauth := {\"position\": \"header\", \"auth\": [\"a\"]}\n",
			want:   "auth.auth must be an object of strings, got an array",
		},
		{
			name:   "a missing auth.auth fails",
			module: "package proxy\n\nauth := {\"position\": \"header\"}\n",
			want:   "auth.auth is missing",
		},
		{
			name:   "a content type that is not a string fails",
			module: "package proxy\n\nauth := {\"position\": \"body\", \"contentType\": true, \"auth\": {}}\n",
			want:   "auth.contentType must be a string, got a boolean",
		},
		{
			name:   "an auth that is not an object fails",
			module: "package proxy\n\nauth := \"header\"\n",
			want:   "auth must be an object, got a string",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(Options{}).Generate(t.Context(), tt.module, map[string]string{"token": "t"}, Request{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Generate = %+v, %v; want an error with %q", got, err, tt.want)
			}
			checkMessage(t, err)
		})
	}
}

func TestCheckAcceptsValidModulesAndRefusesOthersInOneLine(t *testing.T) {
	for _, tt := range []struct{ name, module, want string }{
		{name: "a v1 module is valid", module: headerGenerator},
		{name: "a v0 module is valid", module: "package proxy\n\nauth = {\"token\": t} { t := input.request.headers[\"X\"][0] }\n"},
		{name: "a partial definition of auth is valid", module: "package proxy\n\nauth.token := \"x\"\n"},
		{name: "a module with print is valid", module: "package proxy\n\nauth := {\"token\": \"x\"} if { print(\"hello\") }\n"},
		{
			name:   "a module in neither syntax names both",
			module: "package proxy\n\nauth := {\"token\": \n",
			want:   "policy: the module parses neither as Rego v1 (policy.rego:",
		},
		{name: "an empty module is refused", module: "", want: "policy: the module is empty"},
		{name: "another package is refused", module: "package other\n\nauth := {}\n", want: "declares package other, want package proxy"},
		{name: "a module without auth is refused", module: "package proxy\n\ntoken := \"x\"\n", want: "does not define auth (data.proxy.auth)"},
		{
			name:   "a compile error is reported",
			module: "package proxy\n\nauth := {\"token\": x}\n",
			want:   "policy: the module does not compile: policy.rego:3: rego_unsafe_var_error: var x is unsafe",
		},
		{
			name:   "http.send is refused",
			module: "package proxy\n\nauth := {\"token\": http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"}).body}\n",
			want:   "unsafe built-in function calls in expression: http.send",
		},
		{
			name:   "net.lookup_ip_addr is refused",
			module: "package proxy\n\nauth := {\"token\": concat(\",\", net.lookup_ip_addr(\"localhost\"))}\n",
			want:   "unsafe built-in function calls in expression: net.lookup_ip_addr",
		},
		{
			name:   "opa.runtime is refused",
			module: "package proxy\n\nauth := {\"token\": opa.runtime().env.HOME}\n",
			want:   "unsafe built-in function calls in expression: opa.runtime",
		},
		{
			name:   "trace is refused",
			module: "package proxy\n\nauth := {\"token\": \"x\"} if { trace(\"x\") }\n",
			want:   "unsafe built-in function calls in expression: trace",
		},
		{
			name:   "rego.parse_module is refused",
			module: "package proxy\n\nauth := {\"token\": json.marshal(rego.parse_module(\"a.rego\", \"package a\"))}\n",
			want:   "unsafe built-in function calls in expression: rego.parse_module",
		},
		{
			name:   "json.match_schema, which loads file references, is refused",
			module: "package proxy\n\nauth := {\"token\": \"x\"} if { [true, _] = json.match_schema({}, {\"$ref\": \"file:///etc/passwd\"}) }\n",
			want:   "unsafe built-in function calls in expression: json.match_schema",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := New(Options{}).Check(tt.module)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check error %v, want one with %q", err, tt.want)
			}
			checkMessage(t, err)
		})
	}
}

func TestAModuleInNeitherSyntaxNamesTheErrorOfEach(t *testing.T) {
	err := New(Options{}).Check("package proxy\n\nauth := {\"token\": \n")
	if err == nil {
		t.Fatal("Check: no error")
	}
	msg := err.Error()
	v1, v0, found := strings.Cut(msg, "nor as Rego v0 (")
	if !found || !strings.Contains(v1, "as Rego v1 (policy.rego:") || !strings.Contains(v0, "rego_parse_error") {
		t.Errorf("Check error %q: want the parse errors of v1 and v0", msg)
	}
}

func TestPrintStatementsPrintNothing(t *testing.T) {
	stdout, stderr := os.Stdout, os.Stderr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout, os.Stderr = w, w
	t.Cleanup(func() { os.Stdout, os.Stderr = stdout, stderr })
	module := "package proxy\n\nauth := {\"token\": t} if {\n\tt := input.request.headers[\"X\"][0]\n\tprint(\"the token is\", t)\n}\n"
	got, err := New(Options{}).Token(t.Context(), module, Request{Headers: map[string][]string{"X": {"printed?"}}})
	os.Stdout, os.Stderr = stdout, stderr
	if cerr := w.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	out, _ := io.ReadAll(r)
	if got != "printed?" || err != nil {
		t.Errorf("Token = %q, %v", got, err)
	}
	if len(out) != 0 {
		t.Errorf("the module printed %q", out)
	}
}

func TestALoopingModuleIsBoundedByTheTimeout(t *testing.T) {
	for _, tt := range []struct{ name, module string }{
		{"a comprehension over a huge range stops", `package proxy

auth := {"token": sprintf("%d", [n])} if {
	n := count([x | some x in numbers.range(1, 100000000); x % 7 == 0])
}
`},
		{"a v0 nested iteration stops", `package proxy

auth = {"token": sprintf("%d", [n])} {
	xs := numbers.range(1, 10000)
	n := count({[a, b] | a := xs[_]; b := xs[_]})
}
`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(Options{Timeout: 50 * time.Millisecond})
			if err := e.Check(tt.module); err != nil {
				t.Fatalf("Check: %v", err)
			}
			start := time.Now()
			_, err := e.Token(t.Context(), tt.module, Request{})
			elapsed := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), "policy: the evaluation took longer than 50ms") || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Token error %v, want a timeout", err)
			}
			if elapsed > 2*time.Second {
				t.Errorf("the evaluation took %s", elapsed)
			}
		})
	}
}

func TestACancelledCallerAbandonsTheEvaluation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := New(Options{}).Token(ctx, "package proxy\n\nauth := {\"token\": \"x\"} if { count(numbers.range(1, 100000000)) > 0 }\n", Request{})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "policy: the evaluation was abandoned") {
		t.Errorf("Token error %v, want the caller's cancellation", err)
	}
}

func TestARuntimeErrorIsReportedClearly(t *testing.T) {
	for _, tt := range []struct{ name, module, want string }{
		{
			name:   "a failing built-in names itself and its position",
			module: "package proxy\n\nauth := {\"token\": base64.decode(input.request.headers[\"X\"][0])}\n",
			want:   "policy: the evaluation failed: policy.rego:3: eval_builtin_error: base64.decode failed (its message is withheld: it may hold a secret)",
		},
		{
			name:   "conflicting outputs are reported",
			module: "package proxy\n\nauth = {\"token\": \"a\"} if { true }\n\nauth = {\"token\": \"b\"} if { true }\n",
			want:   "eval_conflict_error: rule data.proxy.auth produced conflicting values at policy.rego:3, policy.rego:5 (the values are withheld)",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{}).Token(t.Context(), tt.module, Request{Headers: map[string][]string{"X": {"%%% not base64"}}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Token error %v, want one with %q", err, tt.want)
			}
			checkMessage(t, err)
		})
	}
}

func TestAPreparedQueryIsCompiledOncePerModule(t *testing.T) {
	e := New(Options{})
	data := map[string]string{"token": "t"}
	for range 100 {
		if _, err := e.Generate(t.Context(), headerGenerator, data, Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Check(headerGenerator); err != nil {
		t.Fatal(err)
	}
	if n := e.compiles.Load(); n != 1 {
		t.Errorf("100 evaluations and a check compiled %d times, want 1", n)
	}
	bad := "package proxy\n\nauth := {\"token\": http.send({}).body}\n"
	for range 10 {
		if _, err := e.Token(t.Context(), bad, Request{}); err == nil {
			t.Fatal("a module with http.send evaluated")
		}
	}
	if n := e.compiles.Load(); n != 2 {
		t.Errorf("a bad module evaluated 10 times compiled %d times, want once", n-1)
	}
}

func TestTheCacheEvictsTheLeastRecentlyUsedModule(t *testing.T) {
	e := New(Options{CacheSize: 2})
	module := func(i int) string { return fmt.Sprintf("package proxy\n\nauth := {\"token\": \"%d\"}\n", i) }
	use := func(i int) {
		t.Helper()
		if got, err := e.Token(t.Context(), module(i), Request{}); err != nil || got != fmt.Sprint(i) {
			t.Fatalf("Token = %q, %v", got, err)
		}
	}
	use(1)
	use(2)
	use(3) // evicts 1
	if n := e.compiles.Load(); n != 3 {
		t.Fatalf("3 modules compiled %d times", n)
	}
	use(3)
	use(2)
	if n := e.compiles.Load(); n != 3 {
		t.Errorf("modules 2 and 3, cached, compiled again: %d compilations", n)
	}
	use(1) // evicted: compiled again, evicting 3
	if n := e.compiles.Load(); n != 4 {
		t.Errorf("module 1, evicted, gave %d compilations, want 4", n)
	}
	if e.cache.Len() != 2 {
		t.Errorf("the cache holds %d modules, want 2", e.cache.Len())
	}
}

func TestTheEngineIsSafeForConcurrentUse(t *testing.T) {
	// Three modules in a cache of two: compilations and evictions race
	// with evaluations. 16 goroutines on few CPUs can wait longer than
	// the default timeout for one.
	e := New(Options{CacheSize: 2, Timeout: time.Minute})
	modules := []string{
		headerGenerator,
		"package proxy\n\nauth := {\"position\": \"query\", \"auth\": {\"t\": input.data.token}}\n",
		"package proxy\n\nauth = {\"position\": \"body\", \"auth\": {\"t\": input.data.token}} { true }\n",
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				token := fmt.Sprintf("token-%d-%d", g, i)
				inj, err := e.Generate(t.Context(), modules[(g+i)%len(modules)], map[string]string{"token": token}, Request{Method: "GET"})
				if err != nil {
					errs <- err
					return
				}
				for _, v := range inj.Auth {
					if v != token {
						errs <- fmt.Errorf("goroutine %d got %q, want %q", g, v, token)
						return
					}
				}
				if _, err := e.Token(t.Context(), privateTokenExtractor, Request{Headers: map[string][]string{"Private-Token": {token}}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNoSecretOrHeaderValueAppearsInAnError(t *testing.T) {
	const (
		secret = "s3cr3t(VALUE]42"
		header = "h3ad3r-T0KEN-77"
	)
	data := map[string]string{"token": secret, "other": "0ther-s3cret"}
	req := Request{
		Headers: map[string][]string{"Authorization": {"Bearer " + header}, "Private-Token": {header}},
		Query:   map[string][]string{"q": {"qu3ry-s3cret"}},
		Body:    map[string]any{"password": "b0dy-s3cret"},
	}
	gen := func(value string) string {
		return "package proxy\n\nauth := {\"position\": \"header\", \"auth\": {\"X\": " + value + "}}\n"
	}
	modules := []string{
		gen("time.parse_rfc3339_ns(input.data.token)"),
		gen("sprintf(\"%d\", [to_number(input.data.token)])"),
		gen("sprintf(\"%v\", [regex.match(input.data.token, \"x\")])"),
		gen("sprintf(\"%d\", [units.parse_bytes(input.data.token)])"),
		gen("json.unmarshal(input.request.headers.Authorization[0])"),
		gen("json.unmarshal(input.request.headers[\"Private-Token\"][0])"),
		gen("sprintf(\"%d\", [time.parse_duration_ns(input.request.query.q[0])])"),
		gen("json.unmarshal(input.request.body.password)"),
		gen("json.unmarshal(upper(input.data.token))"),
		gen("to_number(input.data.other)"),
		gen("{input.data.token: 1}"),
		"package proxy\n\nauth := {\"position\": input.data.token, \"auth\": {}}\n",
		"package proxy\n\nauth := {\"position\": upper(input.data.token), \"auth\": {}}\n",
		"package proxy\n\nauth := {\"position\": input.request.headers.Authorization[0], \"auth\": {}}\n",
		"package proxy\n\nauth := {\"position\": \"header\", \"auth\": {input.data.token: 1}}\n",
		"package proxy\n\nauth := {\"position\": \"header\", \"auth\": {input.request.headers.Authorization[0]: 1}}\n",
		"package proxy\n\nauth = {\"position\": \"header\", \"auth\": {\"X\": input.data.token}} if { true }\n\nauth = {\"position\": \"header\", \"auth\": {\"X\": input.data.other}} if { true }\n",
		"package proxy\n\nauth = {\"position\": \"header\", \"auth\": {\"X\": upper(input.data.token)}} if { true }\n\nauth = {\"position\": \"header\", \"auth\": {\"X\": \"b\"}} if { true }\n",
		"package proxy\n\nauth := {\"position\": \"header\", \"auth\": {\"X\": sprintf(\"%d\", [count([x | some x in numbers.range(1, 100000000); x != input.data.token])])}}\n",
	}
	e := New(Options{Timeout: 50 * time.Millisecond})
	for _, module := range modules {
		inj, err := e.Generate(t.Context(), module, data, req)
		if err == nil {
			t.Errorf("Generate of %s = %+v, want an error", module, inj)
			continue
		}
		checkMessage(t, err)
		// The whole chain: a wrapped error must not hold them either.
		for err := err; err != nil; err = errors.Unwrap(err) {
			msg := err.Error()
			for _, value := range []string{secret, strings.ToUpper(secret), "s3cr3t", "0ther-s3cret", header, "qu3ry-s3cret", "b0dy-s3cret"} {
				if strings.Contains(msg, value) {
					t.Errorf("the error %q of %s holds %q", msg, module, value)
				}
			}
		}
	}
}

func TestOptionsTakeTheirDefaults(t *testing.T) {
	e := New(Options{Timeout: -1, CacheSize: -1})
	for i := range DefaultCacheSize + 1 {
		e.cache.Add([32]byte{byte(i), byte(i >> 8)}, &prepared{})
	}
	if e.timeout != DefaultTimeout || e.cache.Len() != DefaultCacheSize {
		t.Errorf("timeout %s, cache of %d: want %s and %d", e.timeout, e.cache.Len(), DefaultTimeout, DefaultCacheSize)
	}
}

func BenchmarkGenerateHeader(b *testing.B) {
	e := New(Options{})
	data := map[string]string{"token": "glpat-0123456789abcdefghij"}
	req := Request{
		Headers: map[string][]string{
			"Accept":          {"application/json"},
			"Accept-Encoding": {"gzip"},
			"User-Agent":      {"git/2.45.0"},
			"Private-Token":   {"client-token-0123456789"},
			"X-Request-Id":    {"4b5c8f0e-1d2e-4a3b-9c8d-7e6f5a4b3c2d"},
		},
		Query:  map[string][]string{"per_page": {"100"}},
		Method: "GET",
		Path:   "/api/v4/projects/42/repository/files",
		Host:   "gitlab.example.com",
	}
	ctx := b.Context()
	if _, err := e.Generate(ctx, headerGenerator, data, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Generate(ctx, headerGenerator, data, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenFromHeader(b *testing.B) {
	e := New(Options{})
	req := Request{
		Headers: map[string][]string{
			"Accept":        {"application/json"},
			"User-Agent":    {"git/2.45.0"},
			"Private-Token": {"client-token-0123456789"},
		},
		Method: "GET",
		Path:   "/api/v4/user",
		Host:   "gitlab.example.com",
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Token(ctx, privateTokenExtractor, req); err != nil {
			b.Fatal(err)
		}
	}
}
