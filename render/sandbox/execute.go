package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"time"
)

// Errors of Parse and Execute. Test with errors.Is.
var (
	// ErrParse: the template does not parse (or calls a function it does
	// not have, such as env).
	ErrParse = errors.New("parse")
	// ErrTooLarge: the output, or a function's result, exceeds its bound.
	ErrTooLarge = errors.New("too large")
	// ErrTimeout: the execution ran past its time.
	ErrTimeout = errors.New("timeout")
	// ErrExecution: the execution failed (a missing key, a failed
	// function); the message holds the position only.
	ErrExecution = errors.New("execution failed")
)

// Error is an error of Parse or Execute: its message, and one of the
// Err* kinds for errors.Is.
type Error struct {
	kind error
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.kind }

func fail(kind error, format string, args ...any) *Error {
	return &Error{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Options shape a template.
type Options struct {
	// MaxBytes bounds the result of every function (and an eighth of it
	// the items of a list). Required.
	MaxBytes int
	// MissingKeyError fails an execution on a missing map key; by default
	// it prints "<no value>", as text/template does.
	MissingKeyError bool
}

// Template is a parsed template with the sandbox's functions. Once an
// execution of it has been abandoned, every function call of it fails.
type Template struct {
	name      string
	tmpl      *template.Template
	abandoned atomic.Bool
}

// Parse parses src as the template name.
func Parse(name, src string, opts Options) (*Template, error) {
	if opts.MaxBytes <= 0 {
		return nil, errors.New("sandbox: Options.MaxBytes is required")
	}
	t := &Template{name: name}
	tmpl := template.New(name).Funcs(funcs(opts.MaxBytes, &t.abandoned))
	if opts.MissingKeyError {
		tmpl = tmpl.Option("missingkey=error")
	}
	var err error
	if t.tmpl, err = tmpl.Parse(src); err != nil {
		return nil, fail(ErrParse, "parse: %s", err)
	}
	return t, nil
}

// slots bounds the executions running at once in this process
// (max(2, GOMAXPROCS)). It is process-wide on purpose, and fixed at start:
// a run abandoned at its time limit keeps its slot until it really ends,
// so runaway templates cannot pile up goroutines and memory whichever
// caller started them.
var slots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// Execute runs the template on data and returns at most budget bytes of
// output, within timeout (waiting for an execution slot included).
func (t *Template) Execute(data any, budget int, timeout time.Duration) ([]byte, error) {
	if budget <= 0 {
		return nil, fail(ErrTooLarge, "the output exceeds the size limit")
	}
	if timeout <= 0 {
		return nil, fail(ErrTimeout, "rendering took longer than the time limit")
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case slots <- struct{}{}:
	case <-timer.C:
		return nil, fail(ErrTimeout, "waited longer than %s for one of the %d template execution slots (too many renderings at once)", timeout, cap(slots))
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-slots }()
		out := &limitedBuffer{limit: budget}
		err := t.tmpl.Execute(out, data)
		done <- result{out.buf.Bytes(), err}
	}()
	select {
	case r := <-done:
		var tooBig errTooBig
		switch {
		case errors.Is(r.err, errOutputTooLarge):
			return nil, fail(ErrTooLarge, "the output exceeds the limit of %d bytes", budget)
		case errors.As(r.err, &tooBig):
			// The message holds only the function name and numbers.
			return nil, fail(ErrTooLarge, "at %s: %s", position(t.name, r.err), tooBig.Error())
		case r.err != nil:
			pos := position(t.name, r.err)
			if pos == "" {
				pos = t.name
			}
			return nil, fail(ErrExecution, "execution failed at %s (the message is withheld: it may hold the token)", pos)
		}
		return r.out, nil
	case <-timer.C:
		t.abandoned.Store(true)
		return nil, fail(ErrTimeout, "rendering took longer than %s", timeout)
	}
}

// errOutputTooLarge stops a template whose output exceeds its budget.
var errOutputTooLarge = errors.New("output too large")

type limitedBuffer struct {
	buf   bytes.Buffer
	limit int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.buf.Len()+len(p) > l.limit {
		return 0, errOutputTooLarge
	}
	return l.buf.Write(p)
}

// position returns "name:line:col" of a template execution error, without
// anything else of its message: the message of a function can carry the
// template's data (sprig's fail, a failed urlParse), and data derived from
// the token (encoded, truncated) cannot be recognised and redacted.
func position(name string, err error) string {
	var ee template.ExecError
	if !errors.As(err, &ee) {
		return ""
	}
	rest, ok := strings.CutPrefix(ee.Error(), "template: "+name+":")
	if !ok {
		return ""
	}
	pos := rest
	if i := strings.Index(rest, ": "); i >= 0 {
		pos = rest[:i]
	}
	line, col, _ := strings.Cut(pos, ":")
	if _, err := strconv.Atoi(line); err != nil {
		return ""
	}
	if col != "" {
		if _, err := strconv.Atoi(col); err != nil {
			return name + ":" + line
		}
		return name + ":" + line + ":" + col
	}
	return name + ":" + line
}
