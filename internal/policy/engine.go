package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Defaults of Options.
const (
	// DefaultTimeout is the default of Options.Timeout.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultCacheSize is the default of Options.CacheSize.
	DefaultCacheSize = 256
)

// moduleFile is the file name of every module in positions of errors.
const moduleFile = "policy.rego"

// Options shape an Engine. The zero value takes the defaults.
type Options struct {
	// Timeout bounds one evaluation (default 100ms).
	Timeout time.Duration
	// CacheSize bounds the prepared queries kept (LRU, default 256).
	CacheSize int
}

// Engine compiles and evaluates ConnectorClass Rego modules. It keeps the
// prepared query of each distinct module text it has seen, up to
// Options.CacheSize, least recently used first out. It is safe for
// concurrent use.
type Engine struct {
	timeout time.Duration
	cache   *lru.Cache[[sha256.Size]byte, *prepared]
	// capabilities per Rego version: every built-in, no network host.
	capsV1, capsV0 *ast.Capabilities
	// compiles counts compilations, for tests.
	compiles atomic.Int64
}

// prepared is the result of compiling one module: its query, or why it
// does not compile.
type prepared struct {
	query rego.PreparedEvalQuery
	err   error
}

// unsafeBuiltins are refused at compile time: they reach the network, the
// file system (a JSON schema's $ref may name a file or a URL) or the
// process, or they trace or parse policies.
var unsafeBuiltins = map[string]struct{}{
	ast.HTTPSend.Name:         {},
	ast.NetLookupIPAddr.Name:  {},
	ast.OPARuntime.Name:       {},
	ast.Trace.Name:            {},
	ast.RegoParseModule.Name:  {},
	ast.JSONMatchSchema.Name:  {},
	ast.JSONSchemaVerify.Name: {},
}

// proxyPackage is the package of every module, and authQuery the document
// it defines.
var (
	proxyPackage = ast.MustParseRef("data.proxy")
	authQuery    = ast.MustParseBody("data.proxy.auth")
)

// New returns an Engine; zero or negative Options fields take their
// defaults.
func New(opts Options) *Engine {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	cache, err := lru.New[[sha256.Size]byte, *prepared](opts.CacheSize)
	if err != nil {
		// lru.New fails only on a size below 1, excluded above.
		panic(err)
	}
	return &Engine{
		timeout: opts.Timeout,
		cache:   cache,
		capsV1:  capabilities(ast.RegoV1),
		capsV0:  capabilities(ast.RegoV0),
	}
}

// capabilities are OPA's own for version, with no host allowed for network
// access (http.send and JSON schema references, refused anyway).
func capabilities(version ast.RegoVersion) *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion(ast.CapabilitiesRegoVersion(version))
	caps.AllowNet = []string{}
	return caps
}

// Check compiles module (used by the reconciler to set a condition); nil if
// it is valid and defines data.proxy.auth. The result is cached like the
// prepared query of an evaluation.
func (e *Engine) Check(module string) error {
	_, err := e.prepare(context.Background(), module) //nolint:forbidigo // Check takes no context; compiling does no I/O.
	return err
}

// prepare returns the prepared query of module, compiling it on first use.
// Two concurrent first uses of one module may both compile it.
func (e *Engine) prepare(ctx context.Context, module string) (rego.PreparedEvalQuery, error) {
	key := sha256.Sum256([]byte(module))
	if p, ok := e.cache.Get(key); ok {
		return p.query, p.err
	}
	p := e.compile(ctx, module)
	e.cache.Add(key, p)
	return p.query, p.err
}

// compile parses module as Rego v1, else as v0, checks that it defines
// data.proxy.auth and prepares the query of it.
func (e *Engine) compile(ctx context.Context, module string) *prepared {
	e.compiles.Add(1)
	mod, version, err := parse(module)
	if err != nil {
		return &prepared{err: err}
	}
	if !mod.Package.Path.Equal(proxyPackage) {
		return &prepared{err: fmt.Errorf("policy: the module declares %s, want package proxy", oneLine(mod.Package.String()))}
	}
	if !definesAuth(mod) {
		return &prepared{err: errors.New("policy: the module does not define auth (data.proxy.auth)")}
	}
	caps := e.capsV1
	if version == ast.RegoV0 {
		caps = e.capsV0
	}
	query, err := rego.New(
		rego.ParsedQuery(authQuery),
		rego.ParsedModule(mod),
		rego.SetRegoVersion(version),
		rego.Capabilities(caps),
		rego.UnsafeBuiltins(unsafeBuiltins),
		rego.EnablePrintStatements(false),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(context.WithoutCancel(ctx))
	if err != nil {
		return &prepared{err: compileError("policy: the module does not compile: ", err)}
	}
	return &prepared{query: query}
}

// parse parses module as Rego v1 and, when that fails, as Rego v0.
func parse(module string) (*ast.Module, ast.RegoVersion, error) {
	mod, errV1 := ast.ParseModuleWithOpts(moduleFile, module, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if errV1 == nil && mod != nil {
		return mod, ast.RegoV1, nil
	}
	if errV1 == nil || isEmpty(errV1) {
		return nil, 0, errors.New("policy: the module is empty")
	}
	mod, errV0 := ast.ParseModuleWithOpts(moduleFile, module, ast.ParserOptions{RegoVersion: ast.RegoV0})
	if errV0 == nil && mod != nil {
		return mod, ast.RegoV0, nil
	}
	if errV0 == nil {
		errV0 = errors.New("empty module")
	}
	return nil, 0, &lineError{
		msg: fmt.Sprintf("policy: the module parses neither as Rego v1 (%s) nor as Rego v0 (%s)", astMessage(errV1), astMessage(errV0)),
		err: errV1,
	}
}

// isEmpty reports whether err is the parser's error of a module without
// statements (blank, or comments only).
func isEmpty(err error) bool {
	errs := astErrors(err)
	return len(errs) == 1 && errs[0].Message == "empty module"
}

// definesAuth reports whether a rule of mod defines auth, entirely or
// partially (auth.token := ...).
func definesAuth(mod *ast.Module) bool {
	auth := ast.VarTerm("auth")
	for _, rule := range mod.Rules {
		if ref := rule.Head.Ref(); len(ref) > 0 && ref[0].Equal(auth) {
			return true
		}
	}
	return false
}
