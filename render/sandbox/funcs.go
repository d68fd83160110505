package sandbox

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync/atomic"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// removed are the sprig functions templates never get: they read the
// process environment or generate keys and certificates.
var removed = []string{"env", "expandenv", "genPrivateKey", "genCA", "genCAWithKey",
	"genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey", "buildCustomCert"}

// errTooBig is panicked by a capped function; text/template turns the
// panic of a function into an execution error.
type errTooBig struct {
	function string
	n        float64
	limit    int
}

func (e errTooBig) Error() string {
	return fmt.Sprintf("%s would produce %.0f items or bytes, more than the limit of %d", e.function, e.n, e.limit)
}

// errAbandoned is panicked by every function of a run past its time.
type errAbandoned struct{}

func (errAbandoned) Error() string { return "abandoned at its time limit" }

// stepCount is the number of values untilStep(start, stop, step) yields.
func stepCount(start, stop, step int) float64 {
	if step == 0 || (stop < start) != (step < 0) || stop == start {
		return 0
	}
	return math.Ceil(math.Abs(float64(stop)-float64(start)) / math.Abs(float64(step)))
}

// funcs is the function map of a template bounded by maxBytes; once
// abandoned is set, every function call fails.
func funcs(maxBytes int, abandoned *atomic.Bool) template.FuncMap {
	f := sprig.TxtFuncMap()
	for _, name := range removed {
		delete(f, name)
	}
	maxItems := max(1, maxBytes/8)
	check := func(function string, n float64, limit int) {
		if n > float64(limit) {
			panic(errTooBig{function: function, n: n, limit: limit})
		}
	}
	seq := f["seq"].(func(...int) string)
	f["repeat"] = func(count int, str string) string {
		check("repeat", float64(count)*float64(max(1, len(str))), maxBytes)
		return strings.Repeat(str, max(0, count))
	}
	f["until"] = func(count int) []int {
		step := 1
		if count < 0 {
			step = -1
		}
		check("until", stepCount(0, count, step), maxItems)
		return untilStep(0, count, step)
	}
	f["untilStep"] = func(start, stop, step int) []int {
		check("untilStep", stepCount(start, stop, step), maxItems)
		return untilStep(start, stop, step)
	}
	f["seq"] = func(params ...int) string {
		var n float64
		switch len(params) {
		case 1:
			n = math.Abs(float64(params[0])-1) + 1
		case 2:
			n = math.Abs(float64(params[1])-float64(params[0])) + 1
		case 3:
			if params[1] != 0 {
				n = math.Abs(float64(params[2])-float64(params[0]))/math.Abs(float64(params[1])) + 1
			}
		}
		check("seq", n, maxItems)
		return seq(params...)
	}
	for _, name := range []string{"indent", "nindent"} {
		orig := f[name].(func(int, string) string)
		f[name] = func(spaces int, v string) string {
			check(name, float64(spaces+1)*float64(strings.Count(v, "\n")+1)+float64(len(v)), maxBytes)
			return orig(spaces, v)
		}
	}
	for _, name := range []string{"randAlphaNum", "randAlpha", "randAscii", "randNumeric"} {
		orig := f[name].(func(int) string)
		f[name] = func(count int) string {
			check(name, float64(count), maxBytes)
			return orig(count)
		}
	}
	randBytes := f["randBytes"].(func(int) (string, error))
	f["randBytes"] = func(count int) (string, error) {
		check("randBytes", float64(count)*4/3, maxBytes)
		return randBytes(count)
	}
	// text/template's own print functions, which a FuncMap entry overrides.
	f["print"], f["printf"], f["println"] = fmt.Sprint, fmt.Sprintf, fmt.Sprintln
	for name, fn := range f {
		f[name] = bounded(name, fn, maxBytes, abandoned)
	}
	return f
}

// untilStep is sprig's untilStep.
func untilStep(start, stop, step int) []int {
	v := []int{}
	if stop < start {
		if step >= 0 {
			return v
		}
		for i := start; i > stop; i += step {
			v = append(v, i)
		}
		return v
	}
	if step <= 0 {
		return v
	}
	for i := start; i < stop; i += step {
		v = append(v, i)
	}
	return v
}

// bounded wraps fn so that it fails once the run is abandoned, and so that
// a string, byte slice, list or map result longer than limit fails the
// template.
func bounded(name string, fn any, limit int, abandoned *atomic.Bool) any {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func {
		return fn
	}
	t := v.Type()
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		if abandoned.Load() {
			panic(errAbandoned{})
		}
		var out []reflect.Value
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if len(out) > 0 {
			r := out[0]
			for r.Kind() == reflect.Interface && !r.IsNil() {
				r = r.Elem()
			}
			switch r.Kind() {
			case reflect.String, reflect.Slice, reflect.Array, reflect.Map:
				if r.Len() > limit {
					panic(errTooBig{function: name, n: float64(r.Len()), limit: limit})
				}
			}
		}
		return out
	}).Interface()
}
