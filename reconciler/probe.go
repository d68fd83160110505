package reconciler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/tlsconfig"
	"github.com/connectors-io/connectors/render/sandbox"
)

// probeSecret is .Secret in probe templates.
type probeSecret struct {
	// Name, Namespace and Type of the Secret.
	Name, Namespace string
	Type            corev1.SecretType
	// StringData holds the decoded values.
	StringData map[string]string
	// Data holds the raw values.
	Data map[string][]byte
}

// probeData is the data of probe templates: .Connector and .Secret.
type probeData struct {
	Connector *connectorsv1alpha1.Connector
	Secret    *probeSecret
}

func newProbeData(c *connectorsv1alpha1.Connector, s *corev1.Secret) probeData {
	d := probeData{Connector: c}
	if s != nil {
		ps := &probeSecret{Name: s.Name, Namespace: s.Namespace, Type: s.Type, Data: s.Data, StringData: make(map[string]string, len(s.Data))}
		for k, v := range s.Data {
			ps.StringData[k] = string(v)
		}
		d.Secret = ps
	}
	return d
}

// maxTemplateOutput bounds a rendered path or header value, and every
// function result of its template.
const maxTemplateOutput = 16 << 10

// render runs a probe template (a path or a header value) in the sandbox
// that configuration templates run in: no env, bounded output and time.
func (r *ConnectorReconciler) render(field, src string, data probeData) (string, error) {
	if !strings.Contains(src, "{{") {
		return src, nil
	}
	t, err := sandbox.Parse(field, src, sandbox.Options{MaxBytes: maxTemplateOutput})
	if err != nil {
		return "", fmt.Errorf("template of %s: %w", field, err)
	}
	out, err := t.Execute(data, maxTemplateOutput, r.opts.TemplateTimeout)
	if err != nil {
		// The error names the template and the position, never the values.
		return "", fmt.Errorf("template of %s: %w", field, err)
	}
	return string(out), nil
}

// probeOutcome is what a probe found.
type probeOutcome struct {
	// status is the HTTP status code, 0 when no answer came.
	status int
	// err says why no usable answer came (dial, TLS, template, timeout).
	err error
	// target is METHOD URL for messages (no query, no credentials).
	target string
	// cel is the probe's response.cel, which judges the answer instead of
	// the 2xx rule; header and body are kept for it (the body bounded).
	cel    string
	header http.Header
	body   []byte
}

// maxProbeBody bounds the body a probe reads for its response.cel.
const maxProbeBody = 256 << 10

// runProbe sends the probe request against the connector's address and
// reports the answer. A 2xx status is success.
func (r *ConnectorReconciler) runProbe(ctx context.Context, p *connectorsv1alpha1.HTTPProbe, data probeData, roots *x509.CertPool) probeOutcome {
	addr, err := url.Parse(data.Connector.Spec.Address)
	if err != nil {
		return probeOutcome{err: fmt.Errorf("address: %w", err)}
	}
	path, err := r.render("path", p.Path, data)
	if err != nil {
		return probeOutcome{err: err}
	}
	target := &url.URL{Scheme: addr.Scheme, Host: addr.Host}
	// The original's rule: an explicit scheme wins; without one, the
	// address's scheme when the probe keeps the address's host, else http.
	if p.Host != "" && p.Host != addr.Host {
		target.Host, target.Scheme = p.Host, "http"
		if p.Scheme == "" && addr.Scheme == "https" && len(p.HTTPHeaders) > 0 {
			// Headers may carry the Secret: not over an http the class did
			// not ask for.
			return probeOutcome{target: "GET http://" + p.Host, err: fmt.Errorf("the probe's host %s differs from the address's, so it would go over plain http with its headers; set http.scheme to https (or to http, to allow it)", p.Host)}
		}
	}
	if p.Scheme != "" {
		target.Scheme = strings.ToLower(p.Scheme)
	}
	ref, err := url.Parse(path)
	if err != nil {
		return probeOutcome{err: fmt.Errorf("probe path %q: %w", path, err)}
	}
	target.Path, target.RawPath, target.RawQuery = ref.Path, ref.RawPath, ref.RawQuery
	if !strings.HasPrefix(target.Path, "/") {
		target.Path = "/" + target.Path
	}
	method := strings.ToUpper(p.Method)
	if method == "" {
		method = http.MethodGet
	}
	out := probeOutcome{target: method + " " + (&url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path}).String()}

	ctx, cancel := context.WithTimeout(ctx, r.opts.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
	if err != nil {
		out.err = fmt.Errorf("build the request: %w", err)
		return out
	}
	for _, h := range p.HTTPHeaders {
		v, err := r.render("header "+h.Name, h.Value, data)
		if err != nil {
			out.err = err
			return out
		}
		req.Header.Set(h.Name, v)
	}
	req.Header.Set("User-Agent", "connectors-reconciler")
	client := r.probeClient(roots, p.DisableRedirect)
	resp, err := client.Do(req)
	if err != nil {
		out.err = describeDialError(err)
		return out
	}
	if p.Response != nil && strings.TrimSpace(p.Response.CEL) != "" {
		out.cel, out.header = strings.TrimSpace(p.Response.CEL), resp.Header
		out.body, err = io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
		if err != nil {
			_ = resp.Body.Close()
			out.err = fmt.Errorf("read the answer: %w", err)
			return out
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	out.status = resp.StatusCode
	return out
}

// probeClient returns a client that trusts roots, never uses an
// environment proxy, and follows redirects unless told not to.
func (r *ConnectorReconciler) probeClient(roots *x509.CertPool, noRedirect bool) *http.Client {
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: r.opts.ProbeTimeout}).DialContext,
		TLSClientConfig:       tlsconfig.Modern(&tls.Config{RootCAs: roots}), // as the gateway's upstream connections
		TLSHandshakeTimeout:   r.opts.ProbeTimeout,
		ResponseHeaderTimeout: r.opts.ProbeTimeout,
		DisableKeepAlives:     true,
		ForceAttemptHTTP2:     true,
	}
	c := &http.Client{Transport: transport, Timeout: r.opts.ProbeTimeout}
	if noRedirect {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// errUnknownAuthority: the target's certificate chains to no trusted CA.
var errUnknownAuthority = errors.New("the target's TLS certificate is signed by an unknown authority")

// describeDialError turns a transport error into a message that says what
// failed: DNS, connection, TLS trust or timeout.
func describeDialError(err error) error {
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var dns *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &unknownAuthority):
		return errUnknownAuthority
	case errors.As(err, &hostname):
		return fmt.Errorf("the target's TLS certificate is not valid for this address: %s", hostname.Error())
	case errors.As(err, &invalid):
		return fmt.Errorf("the target's TLS certificate is invalid: %s", invalid.Error())
	case errors.As(err, &dns):
		return fmt.Errorf("cannot resolve %s: %s", dns.Name, dns.Err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return errors.New("no answer within the probe timeout")
	case errors.As(err, &opErr):
		return fmt.Errorf("cannot connect: %w", opErr.Err)
	default:
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return uerr.Err
		}
		return err
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
