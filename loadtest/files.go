package loadtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files of an upstream's directory (ServeUpstream writes them, ReadUpstream
// reads them): its address, its CA (certificate and key: the peers sign with
// it too) and its bearer token.
const (
	UpstreamAddrFile  = "addr"
	UpstreamCAFile    = "ca.crt"
	UpstreamCAKeyFile = "ca.key"
	UpstreamTokenFile = "token"
)

// UpstreamInfo is what ReadUpstream finds.
type UpstreamInfo struct {
	Addr  string
	CA    *CA
	Token string
}

// URL is the upstream's https URL.
func (u *UpstreamInfo) URL() string { return "https://" + u.Addr }

// ServeUpstream makes a CA, a serving certificate for 127.0.0.1 and
// localhost and a random token, starts an Upstream on listen, writes the
// directory's files (the token and key 0600) and serves until ctx ends.
func ServeUpstream(ctx context.Context, dir, listen string, watchInterval time.Duration, out io.Writer) error {
	ca, err := NewCA("connectors loadtest")
	if err != nil {
		return err
	}
	leaf, _, _, err := ca.Leaf("127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	token := "loadtest-" + hex.EncodeToString(raw)
	u, err := NewUpstream(ctx, UpstreamOptions{Listen: listen, Token: token, Certificate: leaf, WatchInterval: watchInterval})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("upstream directory: %w", err)
	}
	for name, f := range map[string]struct {
		b    []byte
		mode os.FileMode
	}{
		UpstreamCAFile: {ca.CertPEM, 0o644}, UpstreamCAKeyFile: {ca.KeyPEM, 0o600},
		UpstreamTokenFile: {[]byte(token), 0o600}, UpstreamAddrFile: {[]byte(u.Addr()), 0o644},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), f.b, f.mode); err != nil {
			return fmt.Errorf("upstream file: %w", err)
		}
	}
	_, _ = fmt.Fprintf(out, "connectors loadtest upstream: serving on %s (files in %s)\n", u.URL(), dir)
	return u.Start(ctx)
}

// ReadUpstream reads an upstream's directory.
func ReadUpstream(dir string) (*UpstreamInfo, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("upstream directory %s: %w (is `connectors loadtest upstream --dir %s` running?)", dir, err, dir)
		}
		return b, nil
	}
	var files [4][]byte
	for i, name := range []string{UpstreamAddrFile, UpstreamCAFile, UpstreamCAKeyFile, UpstreamTokenFile} {
		b, err := read(name)
		if err != nil {
			return nil, err
		}
		files[i] = b
	}
	pair, err := tls.X509KeyPair(files[1], files[2])
	if err != nil {
		return nil, fmt.Errorf("upstream directory %s: the CA: %w", dir, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("upstream directory %s: the CA: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("upstream directory %s: the CA key is not ECDSA", dir)
	}
	ca := &CA{Cert: cert, Key: key, CertPEM: files[1], KeyPEM: files[2]}
	addr := strings.TrimSpace(string(files[0]))
	if err := RequireLoopback(addr); err != nil {
		return nil, err
	}
	return &UpstreamInfo{Addr: addr, CA: ca, Token: strings.TrimSpace(string(files[3]))}, nil
}

// BenchOptions configure RunBench.
type BenchOptions struct {
	// UpstreamDir is a running upstream's directory. Required.
	UpstreamDir string
	// Kubeconfig is the mounted kubeconfig of a connector to the upstream
	// (required for the gateway target), GatewayPID its process (0: no CPU
	// and memory figures).
	Kubeconfig string
	GatewayPID int
	// Targets, in the order of each round. Default direct, gateway, nginx, squid.
	Targets []string
	// Cases to run, and Rounds of each. Required; Rounds default 3.
	Cases  []Case
	Rounds int
	// PeerDir holds the peers' files. Default: a temporary directory.
	PeerDir string
	// InstallPeers installs a missing nginx or squid with apt-get.
	InstallPeers bool
	// Fleet sets up the mixed scenario's connectors and pods (its
	// AdminKubeconfig is required when a mixed case runs against the gateway).
	Fleet FleetOptions
	// Progress gets a line per run.
	Progress io.Writer
}

// AllTargets are the bench's default targets.
var AllTargets = []string{"direct", "gateway", "nginx", "squid"}

// RunBench builds the targets (starting and, at the end, stopping the
// peers) and runs Bench.
func RunBench(ctx context.Context, o BenchOptions) ([]*Result, error) {
	up, err := ReadUpstream(o.UpstreamDir)
	if err != nil {
		return nil, err
	}
	if len(o.Targets) == 0 {
		o.Targets = AllTargets
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.PeerDir == "" {
		d, err := os.MkdirTemp("", "connectors-loadtest-")
		if err != nil {
			return nil, fmt.Errorf("peer directory: %w", err)
		}
		defer func() { _ = os.RemoveAll(d) }()
		o.PeerDir = d
	}
	peerOpts := func(name string) PeerOptions {
		return PeerOptions{Dir: filepath.Join(o.PeerDir, name), Upstream: up.Addr, UpstreamCA: up.CA.CertPEM, Token: up.Token, CA: up.CA, Install: o.InstallPeers}
	}
	var targets []*Target
	for _, name := range o.Targets {
		var t *Target
		switch name {
		case "direct":
			t, err = DirectTarget(up.URL(), up.CA.CertPEM, up.Token)
		case "gateway":
			if o.Kubeconfig == "" {
				return nil, errors.New("the gateway target needs --kubeconfig: the mounted kubeconfig of a connector to the upstream")
			}
			t, err = GatewayTarget(o.Kubeconfig, o.GatewayPID)
		case "nginx":
			var p *Peer
			if p, err = StartNginx(ctx, peerOpts("nginx")); err == nil {
				defer p.Stop()
				t, err = NginxTarget(p, up.CA.CertPEM)
			}
		case "squid":
			var p *Peer
			if p, err = StartSquid(ctx, peerOpts("squid")); err == nil {
				defer p.Stop()
				t, err = SquidTarget(p, up.URL(), up.CA.CertPEM)
			}
		default:
			err = fmt.Errorf("unknown target %q (one of %v)", name, AllTargets)
		}
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	for _, c := range o.Cases {
		if c.Options.Scenario != ScenarioMixed {
			continue
		}
		for _, t := range targets {
			if t.Name != "gateway" {
				continue
			}
			fleet, err := SetupFleet(ctx, o.Fleet, up, t)
			if err != nil {
				return nil, err
			}
			defer func() { _ = fleet.Close(context.WithoutCancel(ctx)) }()
			t.fleet = fleet.clients
		}
		break
	}
	// One warm-up request per target: a broken target fails now, not in the table.
	for _, t := range targets {
		rt := t.NewTransport(false, true)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := get(wctx, rt, t.BaseURL+"/api/v1/namespaces/default/pods")
		cancel()
		CloseIdle(rt)
		if err != nil {
			return nil, fmt.Errorf("target %s does not answer: %s", t.Name, errorKind(err)+": "+redact(err.Error(), up.Token))
		}
	}
	return Bench(ctx, targets, o.Cases, o.Rounds, o.Progress)
}

func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "<token>")
}
