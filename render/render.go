package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

// Errors wrapped by Render. Test with errors.Is.
var (
	// ErrInvalid: the request is malformed (a bad selection, a missing
	// parameter, no connector, no file left after exclusions).
	ErrInvalid = errors.New("invalid configuration request")
	// ErrNotFound: the class has no configuration of the requested name.
	ErrNotFound = errors.New("configuration not found")
	// ErrTemplate: the class's template is broken, produces too much output
	// or runs too long; the ConnectorClass must be fixed.
	ErrTemplate = errors.New("configuration template failed")
)

// Built-in file names.
const (
	// FileToken holds the proxy token.
	FileToken = "context.token"
	// FileProxyCACert holds the gateway CA PEM.
	FileProxyCACert = "context.proxy.caCert"
	// FileCACert holds the gateway CA PEM under the usual name.
	FileCACert = "ca.crt"
	// FileHTTPProxy holds the proxy URL with user and token, for http_proxy.
	FileHTTPProxy = "http.proxy"
	// FileHTTPSProxy holds the same URL, for https_proxy.
	FileHTTPSProxy = "https.proxy"
	// FileEnv holds http_proxy, https_proxy and no_proxy as KEY=value lines.
	FileEnv = ".env"
	// FileProxyAddress holds the first connector's status.proxy.httpAddress.url.
	FileProxyAddress = "connector.status.proxyAddress"
)

// BuiltinFiles returns the names of the built-in files, sorted.
func BuiltinFiles() []string {
	names := []string{FileToken, FileProxyCACert, FileCACert, FileHTTPProxy, FileHTTPSProxy, FileEnv, FileProxyAddress}
	sort.Strings(names)
	return names
}

// NoProxy is the no_proxy value written to .env: loopback only, so that
// every other destination (including in-cluster targets) goes through the
// gateway.
const NoProxy = "localhost,127.0.0.1,::1"

// MaxFileNameLength bounds a file name (the usual NAME_MAX).
const MaxFileNameLength = 255

// Limits bound the work of one Render call.
type Limits struct {
	// MaxFileBytes bounds one rendered file. Default 1 MiB.
	MaxFileBytes int
	// MaxTotalBytes bounds all files together. Default 4 MiB.
	MaxTotalBytes int
	// Timeout bounds the execution of all templates. Default 2s.
	Timeout time.Duration
}

// EffectiveLimits returns l with the defaults filled in.
func EffectiveLimits(l Limits) Limits { return l.withDefaults() }

func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = 1 << 20
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = 4 << 20
	}
	if l.Timeout <= 0 {
		l.Timeout = 2 * time.Second
	}
	return l
}

// Input is everything a rendering needs.
type Input struct {
	// Class is the ConnectorClass of the first connector. Required.
	Class *connectorsv1alpha1.ConnectorClass
	// Connectors are the connectors; the first one is .connector. At least
	// one, each with status.proxy.httpAddress.url set.
	Connectors []*connectorsv1alpha1.Connector
	// Token is the proxy token (.context.token).
	Token tokens.Token
	// ProxyCACert is the gateway CA PEM (.context.proxy.caCert). Required.
	ProxyCACert []byte
	// Selection is the comma-separated configuration.names value:
	// configuration names, and "!file" to exclude a file. Empty selects no
	// configuration (only the built-in files).
	Selection string
	// Params are values for the configurations' declared parameters.
	Params map[string]string
	// Limits bound the rendering; zero values mean the defaults.
	Limits Limits
}

// Files are rendered files by name.
type Files map[string][]byte

// Names returns the file names, sorted.
func (f Files) Names() []string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Equal reports whether both hold the same names with the same contents.
func (f Files) Equal(o Files) bool {
	if len(f) != len(o) {
		return false
	}
	for n, b := range f {
		ob, ok := o[n]
		if !ok || !bytes.Equal(b, ob) {
			return false
		}
	}
	return true
}

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

// Render renders the selected configurations and the built-in files.
func Render(in Input) (Files, error) {
	files, err := render(in)
	if err != nil && in.Token != "" && strings.Contains(err.Error(), string(in.Token)) {
		// A template can put its data into an error (sprig's fail, a failed
		// urlParse); the token must not travel on in an error message.
		return nil, &redactedError{msg: strings.ReplaceAll(err.Error(), string(in.Token), "[redacted]"), cause: kindOf(err)}
	}
	return files, err
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

func kindOf(err error) error {
	for _, k := range []error{ErrInvalid, ErrNotFound, ErrTemplate} {
		if errors.Is(err, k) {
			return k
		}
	}
	return ErrTemplate
}

func render(in Input) (Files, error) {
	lim := in.Limits.withDefaults()
	if in.Class == nil || len(in.Connectors) == 0 {
		return nil, fmt.Errorf("%w: a class and at least one connector are required", ErrInvalid)
	}
	if len(in.ProxyCACert) == 0 {
		return nil, fmt.Errorf("%w: the gateway CA certificate is required", ErrInvalid)
	}
	className := in.Class.Name
	sel, err := ParseSelection(in.Selection)
	if err != nil {
		return nil, err
	}
	var configs []connectorsv1alpha1.Configuration
	for _, name := range sel.Configurations {
		c, ok := findConfiguration(in.Class, name)
		if !ok {
			return nil, fmt.Errorf("%w: connector class %s has no configuration %q (it has: %s)", ErrNotFound, className, name, strings.Join(configurationNames(in.Class), ", "))
		}
		configs = append(configs, c)
	}
	params, err := configurationParams(className, configs, in.Params)
	if err != nil {
		return nil, err
	}
	proxy, err := proxyURL(in.Connectors, in.Token)
	if err != nil {
		return nil, err
	}
	excluded := map[string]bool{}
	for _, n := range sel.Excluded {
		excluded[n] = true
	}
	used := map[string]bool{}

	files := Files{}
	total := 0
	ca := string(in.ProxyCACert)
	for name, content := range map[string]string{
		FileToken:        string(in.Token),
		FileProxyCACert:  ca,
		FileCACert:       ca,
		FileHTTPProxy:    proxy,
		FileHTTPSProxy:   proxy,
		FileEnv:          "http_proxy=" + proxy + "\nhttps_proxy=" + proxy + "\nno_proxy=" + NoProxy + "\n",
		FileProxyAddress: proxyAddress(in.Connectors[0]),
	} {
		if excluded[name] {
			used[name] = true
			continue
		}
		files[name] = []byte(content)
		total += len(content)
	}

	data := templateData(in, params)
	deadline := time.Now().Add(lim.Timeout)
	for _, c := range configs {
		fileNames := make([]string, 0, len(c.Data))
		for n := range c.Data {
			fileNames = append(fileNames, n)
		}
		sort.Strings(fileNames)
		for _, fileName := range fileNames {
			where := fmt.Sprintf("connector class %s, configuration %s, file %s", className, c.Name, fileName)
			if err := ValidateFileName(fileName); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if excluded[fileName] {
				used[fileName] = true
				continue
			}
			if _, dup := files[fileName]; dup {
				return nil, fmt.Errorf("%w: %s: the file name is already taken by a built-in file or another configuration", ErrInvalid, where)
			}
			budget := min(lim.MaxFileBytes, lim.MaxTotalBytes-total)
			out, err := execute(fileName, c.Data[fileName], data, budget, lim.MaxTotalBytes, time.Until(deadline))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			files[fileName] = out
			total += len(out)
		}
	}
	for _, n := range sel.Excluded {
		if !used[n] {
			return nil, fmt.Errorf("%w: configuration.names excludes %q, which is not a file of the selection (files: %s)", ErrInvalid, n, strings.Join(append(files.Names(), sortedKeys(used)...), ", "))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: configuration.names %q excludes every file", ErrInvalid, in.Selection)
	}
	return files, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func findConfiguration(class *connectorsv1alpha1.ConnectorClass, name string) (connectorsv1alpha1.Configuration, bool) {
	for _, c := range class.Spec.Configurations {
		if c.Name == name {
			return c, true
		}
	}
	return connectorsv1alpha1.Configuration{}, false
}

func configurationNames(class *connectorsv1alpha1.ConnectorClass) []string {
	var names []string
	for _, c := range class.Spec.Configurations {
		names = append(names, c.Name)
	}
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

// configurationParams merges declared defaults and given values; a declared
// parameter without default and without value is an error.
func configurationParams(className string, configs []connectorsv1alpha1.Configuration, given map[string]string) (map[string]any, error) {
	out := map[string]any{}
	for _, c := range configs {
		for _, p := range c.Params {
			if v, ok := given[p.Name]; ok {
				out[p.Name] = v
				continue
			}
			if p.Default == nil {
				return nil, fmt.Errorf("%w: connector class %s, configuration %s needs the parameter %q (volume attribute configuration.params.%s)", ErrInvalid, className, c.Name, p.Name, p.Name)
			}
			out[p.Name] = paramValue(*p.Default)
		}
	}
	for k, v := range given {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out, nil
}

func paramValue(v connectorsv1alpha1.ParamValue) any {
	switch v.Type {
	case connectorsv1alpha1.ParamTypeArray:
		return v.ArrayVal
	case connectorsv1alpha1.ParamTypeObject:
		return v.ObjectVal
	default:
		return v.StringVal
	}
}

func proxyAddress(c *connectorsv1alpha1.Connector) string {
	if p := c.Status.Proxy; p != nil && p.HTTPAddress != nil {
		return p.HTTPAddress.URL
	}
	return ""
}

// proxyURL is the first connector's proxy address with the user
// "ns/name[,ns/name...]" (URL-encoded) and the token as password.
func proxyURL(conns []*connectorsv1alpha1.Connector, token tokens.Token) (string, error) {
	users := make([]string, 0, len(conns))
	for _, c := range conns {
		if proxyAddress(c) == "" {
			return "", fmt.Errorf("%w: connector %s/%s has no proxy address yet", ErrInvalid, c.Namespace, c.Name)
		}
		users = append(users, c.Namespace+"/"+c.Name)
	}
	u, err := url.Parse(proxyAddress(conns[0]))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: connector %s/%s: proxy address %q is not an absolute URL", ErrInvalid, conns[0].Namespace, conns[0].Name, proxyAddress(conns[0]))
	}
	return u.Scheme + "://" + url.QueryEscape(strings.Join(users, ",")) + ":" + url.QueryEscape(string(token)) + "@" + u.Host + u.EscapedPath(), nil
}

// templateData builds the data of DESIGN §7.
func templateData(in Input, params map[string]any) map[string]any {
	conns := make([]any, 0, len(in.Connectors))
	for _, c := range in.Connectors {
		conns = append(conns, connectorData(c))
	}
	classProxy := ""
	if p := in.Class.Status.Proxy; p != nil && p.HTTPAddress != nil {
		classProxy = p.HTTPAddress.URL
	}
	return map[string]any{
		"connector":  conns[0],
		"connectors": conns,
		"connectorclass": map[string]any{
			"metadata":     map[string]any{"name": in.Class.Name},
			"proxyAddress": classProxy,
		},
		"context": map[string]any{
			"token": string(in.Token),
			"proxy": map[string]any{"caCert": string(in.ProxyCACert)},
		},
		"configurations": params,
	}
}

func connectorData(c *connectorsv1alpha1.Connector) map[string]any {
	var spec map[string]any
	// The spec's JSON form gives templates the manifest's field names.
	if b, err := json.Marshal(c.Spec); err == nil {
		_ = json.Unmarshal(b, &spec)
	}
	if spec == nil {
		spec = map[string]any{}
	}
	labels, annotations := map[string]any{}, map[string]any{}
	for k, v := range c.Labels {
		labels[k] = v
	}
	for k, v := range c.Annotations {
		annotations[k] = v
	}
	return map[string]any{
		"metadata": map[string]any{
			"name": c.Name, "namespace": c.Namespace, "uid": string(c.UID),
			"labels": labels, "annotations": annotations,
		},
		"spec":   spec,
		"status": map[string]any{"proxyAddress": proxyAddress(c)},
	}
}

// executionSlots bounds the template executions running at once in this
// process (max(2, GOMAXPROCS)). It is process-wide on purpose, and fixed at
// start: a run abandoned at its time limit keeps its slot until it really
// ends, so runaway templates cannot pile up goroutines and memory whichever
// caller started them.
var executionSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

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

// stepCount is the number of values untilStep(start, stop, step) yields.
func stepCount(start, stop, step int) float64 {
	if step == 0 || (stop < start) != (step < 0) || stop == start {
		return 0
	}
	return math.Ceil(math.Abs(float64(stop)-float64(start)) / math.Abs(float64(step)))
}

// funcs is sprig without the functions that read the process environment
// or generate keys, with the functions that allocate by a numeric argument
// (repeat, until, untilStep, seq, indent, the rand* family) refusing
// before they allocate more than maxBytes bytes or maxBytes/8 list items,
// and every function's string, list or map result checked against the
// same bound (so that repeated doubling stops at it).
func funcs(maxBytes int) template.FuncMap {
	f := sprig.TxtFuncMap()
	for _, name := range []string{"env", "expandenv", "genPrivateKey", "genCA", "genCAWithKey",
		"genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey", "buildCustomCert"} {
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
		f[name] = boundResult(name, fn, maxBytes)
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

// boundResult wraps fn so that a string, byte slice, list or map result
// longer than limit fails the template.
func boundResult(name string, fn any, limit int) any {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func {
		return fn
	}
	t := v.Type()
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
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

// execute runs one template with an output budget and a timeout. A template
// that overruns the timeout is abandoned; its goroutine ends at the latest
// when it exceeds the output budget or finishes, and keeps its execution
// slot until then.
func execute(name, src string, data map[string]any, budget, maxBytes int, timeout time.Duration) ([]byte, error) {
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(funcs(maxBytes)).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w: parse: %w", ErrTemplate, err)
	}
	if budget <= 0 {
		return nil, fmt.Errorf("%w: the rendered files exceed the size limit", ErrTemplate)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("%w: rendering took longer than the time limit", ErrTemplate)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	sem := executionSlots
	select {
	case sem <- struct{}{}:
	case <-timer.C:
		return nil, fmt.Errorf("%w: waited longer than %s for one of the %d template execution slots (too many renderings at once)", ErrTemplate, timeout, cap(sem))
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-sem }()
		out := &limitedBuffer{limit: budget}
		err := tmpl.Execute(out, data)
		done <- result{out.buf.Bytes(), err}
	}()
	select {
	case r := <-done:
		var tooBig errTooBig
		switch {
		case errors.Is(r.err, errOutputTooLarge):
			return nil, fmt.Errorf("%w: the output exceeds the limit of %d bytes", ErrTemplate, budget)
		case errors.As(r.err, &tooBig):
			// The message holds only the function name and numbers.
			return nil, fmt.Errorf("%w: at %s: %w", ErrTemplate, position(name, r.err), tooBig)
		case r.err != nil:
			pos := position(name, r.err)
			if pos == "" {
				pos = name
			}
			return nil, fmt.Errorf("%w: execution failed at %s (the message is withheld: it may hold the token)", ErrTemplate, pos)
		}
		return r.out, nil
	case <-timer.C:
		return nil, fmt.Errorf("%w: rendering took longer than %s", ErrTemplate, timeout)
	}
}
