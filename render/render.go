package render

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/render/sandbox"
	"github.com/connectors-io/connectors/tokens"
)

// Errors wrapped by Render and Resolve. Test with errors.Is.
var (
	// ErrInvalid: the request is malformed (a bad selection, a missing
	// parameter, no connector, no file left after exclusions).
	ErrInvalid = errors.New("invalid configuration request")
	// ErrNotFound: the class has no configuration of the requested name, or
	// a connector does not exist.
	ErrNotFound = errors.New("configuration not found")
	// ErrTemplate: the class's template is broken, produces too much output
	// or runs too long; the ConnectorClass must be fixed.
	ErrTemplate = errors.New("configuration template failed")
	// ErrForbidden: the identity may not use a connector.
	ErrForbidden = errors.New("connector use forbidden")
	// ErrPrecondition: a connector is not usable (it wraps
	// connectorsv1alpha1.ErrNotUsable too) or its class does not exist.
	ErrPrecondition = errors.New("connector not usable")
	// ErrUnavailable: the cluster could not be asked now; try again later.
	ErrUnavailable = errors.New("cluster unavailable")
)

// Built-in file names.
const (
	// FileToken holds the proxy token.
	FileToken = "context.token"
	// FileProxyCACert holds the gateway CA PEM.
	FileProxyCACert = "context.proxy.caCert"
	// FileCACert holds the gateway CA PEM under the usual name.
	FileCACert = "ca.crt"
	// FileCACertLegacy holds it under the original's older name.
	FileCACertLegacy = "ca.cert"
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
	names := []string{FileToken, FileProxyCACert, FileCACert, FileCACertLegacy, FileHTTPProxy, FileHTTPSProxy, FileEnv, FileProxyAddress}
	sort.Strings(names)
	return names
}

// NoProxy is the no_proxy value written to .env: loopback only, so that
// every other destination (including in-cluster targets) goes through the
// gateway.
const NoProxy = "localhost,127.0.0.1,::1"

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
	// Classes are the classes of the connectors by name (Resolved.Classes);
	// nil: every connector is of Class.
	Classes map[string]*connectorsv1alpha1.ConnectorClass
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
	// Params are values for the configurations' parameters in the flat
	// form (volume attributes configuration.params.NAME): every selected
	// configuration sees them.
	Params map[string]string
	// ConfigParams are the original's form (volume attribute
	// configuration.params, JSON keyed by configuration name): values for
	// one configuration's declared parameters. They win over Params.
	ConfigParams map[string]map[string]string
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
	sel, err := ParseSelection(in.Selection)
	if err != nil {
		return nil, err
	}
	groups, err := classGroups(in)
	if err != nil {
		return nil, err
	}
	// Each selected configuration comes from the class of its connectors:
	// with connectors of several classes, every class that has it renders
	// it for its own connectors (a later one's file wins a clash).
	var jobs []job
	for _, name := range sel.Configurations {
		found := false
		for _, g := range groups {
			if c, ok := findConfiguration(g.class, name); ok {
				jobs = append(jobs, job{group: g, config: c})
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %s has no configuration %q (it has: %s)", ErrNotFound, classesOf(groups), name, strings.Join(allConfigurationNames(groups), ", "))
		}
	}
	for name := range in.ConfigParams {
		if !slices.ContainsFunc(groups, func(g classGroup) bool { _, ok := findConfiguration(g.class, name); return ok }) {
			return nil, fmt.Errorf("%w: configuration.params names configuration %q, which %s does not have (it has: %s)", ErrInvalid, name, classesOf(groups), strings.Join(allConfigurationNames(groups), ", "))
		}
	}
	for i := range jobs {
		if jobs[i].params, err = configurationParams(jobs[i].group.class.Name, jobs[i].config, in.Params, in.ConfigParams[jobs[i].config.Name]); err != nil {
			return nil, err
		}
	}
	// The proxy built-ins name every connector and, as in the original,
	// the proxy of the last class; a class without a proxy renders without
	// them (the original omits them too).
	last := groups[len(groups)-1]
	proxy := ""
	if hasProxy(last.class) || last.conns[0].ProxyAddress() != "" {
		if proxy, err = proxyURL(last.conns[0], in.Connectors, in.Token); err != nil {
			return nil, err
		}
	}
	excluded := map[string]bool{}
	for _, n := range sel.Excluded {
		excluded[n] = true
	}
	used := map[string]bool{}

	files := Files{}
	total := 0
	ca := string(in.ProxyCACert)
	builtins := map[string]string{
		FileToken:        string(in.Token),
		FileProxyCACert:  ca,
		FileCACert:       ca,
		FileCACertLegacy: ca,
	}
	if proxy != "" {
		builtins[FileHTTPProxy], builtins[FileHTTPSProxy] = proxy, proxy
		builtins[FileEnv] = "http_proxy=" + proxy + "\nhttps_proxy=" + proxy + "\nno_proxy=" + NoProxy + "\n"
		builtins[FileProxyAddress] = last.conns[0].ProxyAddress()
	}
	for name, content := range builtins {
		if excluded[name] {
			used[name] = true
			continue
		}
		files[name] = []byte(content)
		total += len(content)
	}

	deadline := time.Now().Add(lim.Timeout)
	for _, j := range jobs {
		c, className := j.config, j.group.class.Name
		data := templateData(in, j.group)
		data["configurations"] = j.params
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
			// As in the original, a later configuration's file replaces an
			// earlier one of the same name, and a class file a built-in.
			total -= len(files[fileName])
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

// execute runs one template in the sandbox with an output budget and a
// timeout.
func execute(name, src string, data map[string]any, budget, maxBytes int, timeout time.Duration) ([]byte, error) {
	// A missing key prints <no value> and a range over it renders nothing,
	// as text/template does by default: the original's templates rely on it.
	tmpl, err := sandbox.Parse(name, src, sandbox.Options{MaxBytes: maxBytes})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	if budget <= 0 {
		return nil, fmt.Errorf("%w: the rendered files exceed the size limit", ErrTemplate)
	}
	out, err := tmpl.Execute(data, budget, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return out, nil
}
