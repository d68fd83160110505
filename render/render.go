package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
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
			out, err := execute(fileName, c.Data[fileName], data, budget, time.Until(deadline))
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

// funcs is sprig without the functions that read the process environment.
func funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	return f
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

// execute runs one template with an output budget and a timeout. A template
// that overruns the timeout is abandoned; its goroutine ends at the latest
// when it exceeds the output budget or finishes.
func execute(name, src string, data map[string]any, budget int, timeout time.Duration) ([]byte, error) {
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(funcs()).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w: parse: %w", ErrTemplate, err)
	}
	if budget <= 0 {
		return nil, fmt.Errorf("%w: the rendered files exceed the size limit", ErrTemplate)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("%w: rendering took longer than the time limit", ErrTemplate)
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out := &limitedBuffer{limit: budget}
		err := tmpl.Execute(out, data)
		done <- result{out.buf.Bytes(), err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if errors.Is(r.err, errOutputTooLarge) {
			return nil, fmt.Errorf("%w: the output exceeds the limit of %d bytes", ErrTemplate, budget)
		}
		if r.err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTemplate, r.err)
		}
		return r.out, nil
	case <-timer.C:
		return nil, fmt.Errorf("%w: rendering took longer than %s", ErrTemplate, timeout)
	}
}
