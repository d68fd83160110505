package control

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
	"strings"
	"time"

	"github.com/connectors-io/connectors/tokens"
)

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
		return nil, errors.New("control: FetchOptions.ControlURL, .Namespace, .Connector and .Token are required")
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
	// Never follow a redirect: it would carry the token to wherever the
	// answer points (another host, or plain http).
	c := *opts.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts.Client = &c
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
