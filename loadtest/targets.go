package loadtest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Target is one way to reach the upstream.
type Target struct {
	// Name: direct, gateway, nginx, squid.
	Name string
	// BaseURL is where requests go: the upstream's URL, or nginx's.
	BaseURL string
	// PID is the proxy process whose CPU and memory are measured (with its
	// descendants); 0 for direct or when unknown.
	PID int
	// Peer reports whether the target is a generated peer; its figures
	// include its descendants (nginx's workers, squid's helpers). The
	// gateway's are its process alone (connectors dev runs the API server as
	// its child).
	Peer bool

	roots  *x509.CertPool
	proxy  func(*http.Request) (*url.URL, error)
	bearer string
	h2     bool // can serve HTTP/2 to the client (squid cannot)
	// fleet: the mixed scenario's clients (other pods' tokens, other
	// connectors) through the same gateway; nil: the target itself.
	fleet []*Target
}

// NewTransport returns a transport with its own connections, as a fresh
// client process has. http1 forces HTTP/1.1 (otherwise HTTP/2 where the
// target offers it); keepAlive false closes each connection after one
// request.
func (t *Target) NewTransport(http1, keepAlive bool) http.RoundTripper {
	protos := []string{"h2", "http/1.1"}
	if http1 || !t.h2 {
		protos = []string{"http/1.1"}
	}
	tr := &http.Transport{
		Proxy:                 t.proxy,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: t.roots, MinVersion: tls.VersionTLS12, NextProtos: protos},
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     protos[0] == "h2",
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		DisableKeepAlives:     !keepAlive,
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	if protos[0] != "h2" {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	if t.bearer == "" {
		return tr
	}
	return &bearer{token: "Bearer " + t.bearer, rt: tr}
}

type bearer struct {
	token string
	rt    *http.Transport
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", b.token)
	return b.rt.RoundTrip(r)
}

// CloseIdle closes the idle connections of a transport from NewTransport.
func CloseIdle(rt http.RoundTripper) {
	switch t := rt.(type) {
	case *http.Transport:
		t.CloseIdleConnections()
	case *bearer:
		t.rt.CloseIdleConnections()
	}
}

// DirectTarget sends the real token straight to the upstream.
func DirectTarget(upstreamURL string, upstreamCA []byte, token string) (*Target, error) {
	if err := requireLoopbackURL(upstreamURL); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(upstreamCA) {
		return nil, errors.New("direct: the upstream CA holds no PEM certificate")
	}
	return &Target{Name: "direct", BaseURL: upstreamURL, roots: roots, bearer: token, h2: true}, nil
}

// GatewayTarget uses a mounted kubeconfig as kubectl does: its server, its
// CA, its proxy-url (the gateway, with the pod token) and its placeholder
// token. pid is the gateway process (0: not measured).
func GatewayTarget(kubeconfig string, pid int) (*Target, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("gateway: read the kubeconfig %s: %w", kubeconfig, err)
	}
	if cfg.Proxy == nil {
		return nil, fmt.Errorf("gateway: the kubeconfig %s has no proxy-url: is it a connectors-csi kubeconfig?", kubeconfig)
	}
	if err := requireLoopbackURL(cfg.Host); err != nil {
		return nil, err
	}
	hostURL, _ := url.Parse(cfg.Host)
	if pu, err := cfg.Proxy(&http.Request{Method: http.MethodGet, URL: hostURL, Header: http.Header{}}); err != nil || pu == nil {
		return nil, fmt.Errorf("gateway: the kubeconfig's proxy-url does not apply to %s", cfg.Host)
	} else if err := RequireLoopback(pu.Host); err != nil {
		return nil, fmt.Errorf("gateway: proxy: %w", err)
	}
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: the kubeconfig's TLS settings: %w", err)
	}
	roots := tlsCfg.RootCAs
	if roots == nil {
		return nil, fmt.Errorf("gateway: the kubeconfig %s names no CA (certificate-authority-data)", kubeconfig)
	}
	return &Target{Name: "gateway", BaseURL: cfg.Host, PID: pid, roots: roots, proxy: cfg.Proxy, bearer: cfg.BearerToken, h2: true}, nil
}

// NginxTarget is a running nginx reverse proxy (see StartNginx).
func NginxTarget(n *Peer, ca []byte) (*Target, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, errors.New("nginx: the CA holds no PEM certificate")
	}
	return &Target{Name: "nginx", BaseURL: "https://" + n.Addr, PID: n.PID(), Peer: true, roots: roots, h2: true}, nil
}

// SquidTarget is a running squid (see StartSquid): CONNECT to it, TLS
// re-terminated with the CA's leaves, Authorization added by squid.
func SquidTarget(s *Peer, upstreamURL string, ca []byte) (*Target, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, errors.New("squid: the CA holds no PEM certificate")
	}
	proxy := &url.URL{Scheme: "http", Host: s.Addr}
	return &Target{Name: "squid", BaseURL: upstreamURL, PID: s.PID(), Peer: true, roots: roots, proxy: http.ProxyURL(proxy), h2: false}, nil
}

func requireLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is no URL", raw)
	}
	return RequireLoopback(u.Host)
}
