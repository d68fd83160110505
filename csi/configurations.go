package csi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/mux"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

// ConfigurationsPath is the route of the configurations API, for gorilla/mux.
const ConfigurationsPath = "/v1/namespaces/{namespace}/connectors/{name}/configurations/{configuration}"

// ConfigurationsAPIOptions configure the configurations API.
type ConfigurationsAPIOptions struct {
	// Callers authenticates the caller's own bearer token (a Reviewer with
	// nil audiences). Required.
	Callers *tokens.Reviewer
	// Authorizer decides whether the caller may use the connector. Required.
	Authorizer *tokens.Authorizer
	// Minter mints the proxy token put into the configuration. Required.
	Minter *tokens.Minter
	// Reader reads Connectors and ConnectorClasses. Required.
	Reader client.Reader
	// ProxyCACert is the gateway CA certificate (PEM). Required unless
	// ProxyCA is given.
	ProxyCACert []byte
	// ProxyCA returns the current gateway CA certificate (PEM), read on
	// every request (see CAFile). Default: a function returning ProxyCACert.
	ProxyCA func() ([]byte, error)
	// Rate is the sustained requests per second of one caller
	// (ServiceAccount). Default 1.
	Rate rate.Limit
	// Burst is the burst of one caller. Default 5.
	Burst int
	// MaxCallers bounds the per-caller rate limiters kept (least recently
	// used first out). Default 10000.
	MaxCallers int
	// Lifetime of the minted token. Default 30m.
	Lifetime time.Duration
	// RenderLimits bound each rendering.
	RenderLimits render.Limits
	// Logger receives one line per request (never tokens or contents).
	// Default: discard.
	Logger logr.Logger
}

// ConfigurationsAPI serves GET ConfigurationsPath: a ServiceAccount caller,
// authenticated by its own bearer token and authorized like the gateway
// does, gets the configuration rendered with a proxy token of its own
// ServiceAccount (bound to its pod when its token is), as JSON
// {"files": {name: content}} or, with ?file=NAME, that file as text/plain.
type ConfigurationsAPI struct {
	opts     ConfigurationsAPIOptions
	resolver *resolver
	limiter  *tokens.CallerLimiter
}

// ConfigurationResponse is the JSON answer of the configurations API.
type ConfigurationResponse struct {
	// Files are the rendered files by name.
	Files map[string]string `json:"files"`
}

// NewConfigurationsAPI checks opts and fills defaults.
func NewConfigurationsAPI(opts ConfigurationsAPIOptions) (*ConfigurationsAPI, error) {
	if opts.Callers == nil || opts.Authorizer == nil || opts.Minter == nil || opts.Reader == nil || (len(opts.ProxyCACert) == 0 && opts.ProxyCA == nil) {
		return nil, errors.New("csi: ConfigurationsAPIOptions.Callers, .Authorizer, .Minter, .Reader and .ProxyCACert (or .ProxyCA) are required")
	}
	if opts.ProxyCA == nil {
		ca := opts.ProxyCACert
		opts.ProxyCA = func() ([]byte, error) { return ca, nil }
	}
	if opts.Rate <= 0 {
		opts.Rate = 1
	}
	if opts.Burst <= 0 {
		opts.Burst = 5
	}
	if opts.MaxCallers <= 0 {
		opts.MaxCallers = 10000
	}
	limiter, err := tokens.NewCallerLimiter(opts.Rate, opts.Burst, opts.MaxCallers)
	if err != nil {
		return nil, err
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = tokens.DefaultExpiration
	}
	if opts.Lifetime < tokens.MinExpiration {
		return nil, fmt.Errorf("csi: ConfigurationsAPIOptions.Lifetime must be at least %s", tokens.MinExpiration)
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &ConfigurationsAPI{opts: opts, resolver: &resolver{reader: opts.Reader, authz: opts.Authorizer}, limiter: limiter}, nil
}

// Register adds the route to r.
func (a *ConfigurationsAPI) Register(r *mux.Router) {
	r.HandleFunc(ConfigurationsPath, a.serve).Methods(http.MethodGet)
}

func (a *ConfigurationsAPI) serve(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	ns, name, configuration := v["namespace"], v["name"], v["configuration"]
	file := r.URL.Query().Get("file")
	log := a.opts.Logger.WithValues("namespace", ns, "connector", name, "configuration", configuration)
	fail := func(code int, msg string) {
		log.Info("configuration request refused", "status", code, "reason", msg)
		writeJSONError(w, code, msg)
	}

	caller, cerr := a.opts.Callers.AuthenticateCaller(r, "fetch connector configurations")
	if cerr != nil {
		if cerr.Err != nil {
			log.Error(cerr.Err, "authenticate a configurations API caller")
		}
		if cerr.Challenge != "" {
			w.Header().Set("WWW-Authenticate", cerr.Challenge)
		}
		fail(cerr.Status, cerr.Message)
		return
	}
	log = log.WithValues("caller", caller.String())
	if !a.limiter.Allow(caller.Username()) {
		w.Header().Set("Retry-After", "1")
		fail(http.StatusTooManyRequests, "too many configuration requests from "+caller.Username()+"; retry later")
		return
	}
	if file != "" {
		if err := render.ValidateFileName(file); err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
	}
	files, err := a.render(r.Context(), caller, connectorRef{Namespace: ns, Name: name}, configuration, file)
	if err != nil {
		code := codeOf(err)
		if code == codes.Internal || code == codes.Unavailable {
			log.Error(err, "render a configuration")
		}
		fail(httpStatus(code), err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if file != "" {
		content, ok := files[file]
		if !ok { // checked before minting; kept for safety
			fail(http.StatusNotFound, fmt.Sprintf("configuration %s has no file %s", configuration, file))
			return
		}
		log.Info("configuration file served", "file", file)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(content)
		return
	}
	resp := ConfigurationResponse{Files: make(map[string]string, len(files))}
	for n, b := range files {
		resp.Files[n] = string(b)
	}
	log.Info("configuration served", "files", len(files))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// allow reports whether caller is within its rate.
func (a *ConfigurationsAPI) render(ctx context.Context, caller tokens.Identity, ref connectorRef, configuration, file string) (render.Files, error) {
	if configuration == "" || strings.ContainsAny(configuration, ",!") {
		return nil, newError(codes.InvalidArgument, nil, "configuration %q must be a single configuration name", configuration)
	}
	res, err := a.resolver.resolve(ctx, caller, []connectorRef{ref})
	if err != nil {
		return nil, err
	}
	if file != "" {
		// Refuse an unknown file before minting a token for nothing.
		names := render.BuiltinFiles()
		for _, c := range res.class.Spec.Configurations {
			if c.Name == configuration {
				names = append(names, sortedKeys(c.Data)...)
			}
		}
		if !slices.Contains(names, file) {
			return nil, newError(codes.NotFound, nil, "configuration %s has no file %s (files: %s)", configuration, file, strings.Join(names, ", "))
		}
	}
	ca, err := a.opts.ProxyCA()
	if err != nil || len(ca) == 0 {
		return nil, newError(codes.Unavailable, err, "cannot read the gateway CA certificate now; try again later")
	}
	var tok tokens.Token
	if caller.PodName != "" && caller.PodUID != "" {
		// Bound to the caller's own pod, so that deleting it revokes the token.
		tok, _, err = a.opts.Minter.MintForPod(ctx, tokens.PodRef{
			Namespace: caller.Namespace, Name: caller.PodName, UID: types.UID(caller.PodUID), ServiceAccount: caller.ServiceAccountName,
		}, a.opts.Lifetime)
	} else {
		tok, _, err = a.opts.Minter.MintForServiceAccount(ctx, caller.Namespace, caller.ServiceAccountName, a.opts.Lifetime)
	}
	if err != nil {
		return nil, newError(codes.Unavailable, err, "cannot mint a token now; try again later")
	}
	files, err := render.Render(render.Input{
		Class: res.class, Connectors: res.connectors, Token: tok, ProxyCACert: ca,
		Selection: configuration, Limits: a.opts.RenderLimits,
	})
	if err != nil {
		return nil, renderError(err)
	}
	return files, nil
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// FetchOptions say which configuration file to fetch and how.
type FetchOptions struct {
	// ControlURL is the control API's base URL, for example
	// https://connectors-control.connectors-system.svc. Required.
	ControlURL string
	// Namespace and Connector name the connector. Required.
	Namespace, Connector string
	// Configuration is the configuration name. Default "kubeconfig".
	Configuration string
	// File is the file of the configuration. Default: Configuration.
	File string
	// Token is the caller's ServiceAccount token. Required.
	Token tokens.Token
	// Client sends the request. Default: a client with a 30s timeout.
	Client *http.Client
	// AllowInsecure permits a plain http ControlURL to a host other than
	// loopback; the caller's token then crosses the network in clear text.
	// Default false: only https, or http to localhost/127.0.0.1/::1.
	AllowInsecure bool
}

// maxFetchBytes bounds a fetched file.
const maxFetchBytes = 8 << 20

// Fetch gets one rendered configuration file from the configurations API.
func Fetch(ctx context.Context, opts FetchOptions) ([]byte, error) {
	if opts.ControlURL == "" || opts.Namespace == "" || opts.Connector == "" || opts.Token == "" {
		return nil, errors.New("csi: FetchOptions.ControlURL, .Namespace, .Connector and .Token are required")
	}
	if opts.Configuration == "" {
		opts.Configuration = "kubeconfig"
	}
	if opts.File == "" {
		opts.File = opts.Configuration
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	base, err := url.Parse(strings.TrimRight(opts.ControlURL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("control URL %q is not an absolute URL", opts.ControlURL)
	}
	switch {
	case base.Scheme == "https":
	case base.Scheme == "http" && (opts.AllowInsecure || isLoopback(base.Hostname())):
	default:
		return nil, fmt.Errorf("control URL %q must be https (http only to a loopback address, or with the insecure option): it carries your token", opts.ControlURL)
	}
	u := base.JoinPath("v1", "namespaces", opts.Namespace, "connectors", opts.Connector, "configurations", opts.Configuration)
	u.RawQuery = url.Values{"file": {opts.File}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+string(opts.Token))
	resp, err := opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch configuration %s of connector %s/%s: %w", opts.Configuration, opts.Namespace, opts.Connector, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the configuration: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return nil, fmt.Errorf("fetch configuration %s of connector %s/%s: %s: %s", opts.Configuration, opts.Namespace, opts.Connector, resp.Status, e.Error)
	}
	if len(body) > maxFetchBytes {
		return nil, fmt.Errorf("the configuration is larger than %d bytes", maxFetchBytes)
	}
	return body, nil
}

// isLoopback reports whether host is localhost or a loopback IP.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WritePrivateFile writes content to path with mode 0600, through a
// temporary file in the same directory renamed over path, so that the
// file is never readable by others, not even an existing one with a wider
// mode, and never half written. `connectors kubeconfig -o FILE` uses it.
func WritePrivateFile(path string, content []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(content); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
