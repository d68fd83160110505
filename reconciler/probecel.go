package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Bounds of probe expressions (http.response.cel): their evaluation cost,
// their time, and how many compiled programs are kept.
const (
	celCostLimit     = 1_000_000
	celTimeout       = time.Second
	celProgramsKept  = 256
	celMaxExpression = 4 << 10
)

// probeCEL compiles and evaluates the boolean expressions that judge probe
// answers. Compiled programs are kept in a bounded cache by their source.
type probeCEL struct {
	env      *cel.Env
	programs *lru.Cache[string, celProgram]
}

// celProgram is a compiled expression, or why it does not compile.
type celProgram struct {
	prg cel.Program
	err error
}

func newProbeCEL() (*probeCEL, error) {
	// response.* is the original's documented surface; statusCode,
	// bodyJSON and bodyString are the bare names one of its designs uses.
	env, err := cel.NewEnv(
		cel.Variable("response", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("statusCode", cel.IntType),
		cel.Variable("bodyJSON", cel.DynType),
		cel.Variable("bodyString", cel.StringType),
	)
	if err != nil {
		return nil, fmt.Errorf("probe CEL environment: %w", err)
	}
	programs, err := lru.New[string, celProgram](celProgramsKept)
	if err != nil {
		return nil, fmt.Errorf("probe CEL cache: %w", err)
	}
	return &probeCEL{env: env, programs: programs}, nil
}

// program compiles src once.
func (p *probeCEL) program(src string) (cel.Program, error) {
	if c, ok := p.programs.Get(src); ok {
		return c.prg, c.err
	}
	c := celProgram{}
	switch {
	case len(src) > celMaxExpression:
		c.err = fmt.Errorf("the expression has %d bytes, at most %d are allowed", len(src), celMaxExpression)
	default:
		ast, issues := p.env.Compile(src)
		if issues != nil && issues.Err() != nil {
			c.err = fmt.Errorf("does not compile: %s", oneLine(issues.Err().Error()))
			break
		}
		if !ast.OutputType().IsExactType(cel.BoolType) && !ast.OutputType().IsExactType(cel.DynType) {
			c.err = fmt.Errorf("yields %s, want a bool", ast.OutputType())
			break
		}
		c.prg, c.err = p.env.Program(ast, cel.CostLimit(celCostLimit), cel.InterruptCheckFrequency(100))
		if c.err != nil {
			c.err = fmt.Errorf("does not compile: %s", oneLine(c.err.Error()))
		}
	}
	p.programs.Add(src, c)
	return c.prg, c.err
}

// eval judges a probe answer with src: true or false, or an error saying
// why the expression could not judge it (never the body's content).
func (p *probeCEL) eval(ctx context.Context, src string, status int, header http.Header, body []byte) (bool, error) {
	prg, err := p.program(src)
	if err != nil {
		return false, err
	}
	var parsed any
	if json.Unmarshal(body, &parsed) != nil {
		parsed = nil
	}
	headers := make(map[string]any, len(header))
	for k, v := range header {
		headers[k] = v
	}
	vars := map[string]any{
		"response": map[string]any{
			"statusCode": int64(status), "headers": headers, "body": parsed, "bodyString": string(body),
		},
		"statusCode": int64(status), "bodyJSON": parsed, "bodyString": string(body),
	}
	ctx, cancel := context.WithTimeout(ctx, celTimeout)
	defer cancel()
	out, _, err := prg.ContextEval(ctx, vars)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, fmt.Errorf("took longer than %s", celTimeout)
		}
		// The runtime error may repeat values of the answer (a key read from
		// it, a string that failed a conversion): only its kind is told.
		return false, fmt.Errorf("failed on this answer: %s", evalErrorKind(err))
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("yielded %s, want a bool", out.Type().TypeName())
	}
	return b, nil
}

// evalErrorKind names the kind of a CEL evaluation error without its text.
func evalErrorKind(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such key"), strings.Contains(msg, "no such attribute"):
		return "it reads a key the answer lacks"
	case strings.Contains(msg, "no such overload"), strings.Contains(msg, "no matching overload"):
		return "it applies an operation to a value of another type"
	case strings.Contains(msg, "cost limit"):
		return "it exceeded its cost limit"
	case strings.Contains(msg, "division by zero"), strings.Contains(msg, "modulus by zero"):
		return "it divides by zero"
	default:
		return "a function failed on a value of the answer"
	}
}

// oneLine folds a multi-line compiler message.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
