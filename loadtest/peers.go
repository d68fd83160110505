package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// PeerOptions configure a generated peer.
type PeerOptions struct {
	// Dir holds the peer's configuration, certificates and logs. Required;
	// it is made world-readable, and its parents must be searchable by
	// everyone (the peers drop root for their workers: nobody, proxy).
	Dir string
	// Upstream is the upstream's host:port (loopback). Required.
	Upstream string
	// UpstreamCA is the PEM CA the peer verifies the upstream with. Required.
	UpstreamCA []byte
	// Token is the bearer token the peer adds. Required.
	Token string
	// CA signs nginx's serving certificate and squid's minted leaves. Required.
	CA *CA
	// Workers: nginx's worker_processes. Default: the number of CPUs.
	Workers int
	// Install installs a missing peer from Debian's packages (apt-get; root).
	Install bool
}

// Peer is a running nginx or squid, stopped by Stop.
type Peer struct {
	Name string
	// Addr is where it listens (127.0.0.1:port).
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// PID is the peer's main process.
func (p *Peer) PID() int { return p.cmd.Process.Pid }

// Stop ends the peer (SIGTERM, SIGKILL after 5 s) and waits for it.
func (p *Peer) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Debian packages of the peers.
const (
	NginxPackage = "nginx-light"
	SquidPackage = "squid-openssl"
)

// findPeer finds a peer's binary, installing its package when allowed.
func findPeer(ctx context.Context, bin, pkg string, install bool) (string, error) {
	for _, p := range []string{bin, "/usr/sbin/" + bin} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	if !install {
		return "", fmt.Errorf("%s is not installed: apt-get install %s (or pass --install-peers)", bin, pkg)
	}
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", pkg)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get install %s: %w: %s", pkg, err, lastLine(out))
	}
	return exec.LookPath("/usr/sbin/" + bin)
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func (o *PeerOptions) validate() error {
	switch {
	case o.Dir == "":
		return errors.New("peer: a directory is required")
	case o.Token == "" || o.CA == nil || len(o.UpstreamCA) == 0:
		return errors.New("peer: the upstream's token and CA and a signing CA are required")
	}
	if strings.ContainsAny(o.Token, "\"'\\;{}\n\r$ ") {
		return errors.New("peer: the token has characters a peer's configuration cannot quote")
	}
	if err := RequireLoopback(o.Upstream); err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	return nil
}

func freeLoopbackPort(ctx context.Context) (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}

func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("peer directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("peer directory: %w", err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("peer file %s: %w", name, err)
		}
	}
	return nil
}

// startPeer runs the command in its own process group and waits until addr
// accepts connections (or the process exits, or 20 s pass).
func startPeer(ctx context.Context, name, addr, log string, path string, args ...string) (*Peer, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	out, err := os.Create(log + ".out")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Peer{Name: name, Addr: addr, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { p.err = cmd.Wait(); _ = out.Close(); close(p.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(log + ".out")
			l, _ := os.ReadFile(log)
			return nil, fmt.Errorf("%s exited at start (%w): %s %s", name, p.err, lastLine(b), lastLine(l))
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("%s: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s does not listen on %s after 20 s (log: %s)", name, addr, log)
		}
	}
}

var nginxConf = template.Must(template.New("nginx").Parse(`# generated by connectors loadtest
worker_processes {{.Workers}};
daemon off;
master_process on;
user nobody nogroup;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/tmp/body;
  proxy_temp_path {{.Dir}}/tmp/proxy;
  fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
  uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
  scgi_temp_path {{.Dir}}/tmp/scgi;
  keepalive_requests 1000000;
  map $http_upgrade $connection_upgrade { default upgrade; "" ""; }
  upstream up {
    server {{.Upstream}};
    keepalive 256;
  }
  server {
    listen {{.Addr}} ssl http2;
    ssl_certificate {{.Dir}}/leaf.pem;
    ssl_certificate_key {{.Dir}}/leaf-key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass https://up;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Authorization "Bearer {{.Token}}";
      proxy_ssl_trusted_certificate {{.Dir}}/upstream-ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
`))

// StartNginx generates and starts nginx: a TLS (HTTP/2) reverse proxy to the
// upstream that sets Authorization, worker_processes = Workers, keep-alive
// HTTP/1.1 upstream connections, no buffering (watches stream).
func StartNginx(ctx context.Context, o PeerOptions) (*Peer, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	bin, err := findPeer(ctx, "nginx", NginxPackage, o.Install)
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackPort(ctx)
	if err != nil {
		return nil, err
	}
	_, leaf, leafKey, err := o.CA.Leaf("127.0.0.1", "localhost")
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	var conf strings.Builder
	if err := nginxConf.Execute(&conf, map[string]any{"Workers": o.Workers, "Dir": o.Dir, "Upstream": o.Upstream, "Addr": addr, "Token": o.Token}); err != nil {
		return nil, fmt.Errorf("nginx configuration: %w", err)
	}
	if err := writeFiles(o.Dir, map[string][]byte{"nginx.conf": []byte(conf.String()), "leaf.pem": leaf, "leaf-key.pem": leafKey, "upstream-ca.pem": o.UpstreamCA}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "tmp"), 0o777); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	_ = os.Chmod(filepath.Join(o.Dir, "tmp"), 0o777)
	return startPeer(ctx, "nginx", addr, filepath.Join(o.Dir, "nginx.log"), bin, "-c", filepath.Join(o.Dir, "nginx.conf"), "-p", o.Dir)
}

var squidConf = template.Must(template.New("squid").Parse(`# generated by connectors loadtest
http_port {{.Addr}} ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=16MB tls-cert={{.Dir}}/ca.pem tls-key={{.Dir}}/ca-key.pem
sslcrtd_program {{.Certgen}} -s {{.Dir}}/ssl_db -M 16MB
sslcrtd_children 4 startup=1 idle=1
acl step1 at_step SslBump1
acl step2 at_step SslBump2
ssl_bump peek step1
ssl_bump stare step2
ssl_bump bump all
tls_outgoing_options cafile={{.Dir}}/upstream-ca.pem
request_header_access Authorization deny all
request_header_add Authorization "Bearer {{.Token}}" all
http_upgrade_request_protocols websocket allow all
http_upgrade_request_protocols SPDY/3.1 allow all
acl localnet src 127.0.0.0/8
acl SSL_ports port 1-65535
acl CONNECT method CONNECT
http_access allow localnet
http_access deny all
cache deny all
access_log none
cache_store_log none
cache_log {{.Dir}}/squid.log
pid_filename {{.Dir}}/squid.pid
coredump_dir {{.Dir}}
logfile_rotate 0
shutdown_lifetime 1 seconds
visible_hostname loadtest
forwarded_for delete
via off
client_persistent_connections on
server_persistent_connections on
read_timeout 60 minutes
`))

// StartSquid generates and starts squid (squid-openssl): CONNECT, ssl_bump
// with CA as its signing CA, Authorization replaced by the token, one
// process (-N).
func StartSquid(ctx context.Context, o PeerOptions) (*Peer, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	bin, err := findPeer(ctx, "squid", SquidPackage, o.Install)
	if err != nil {
		return nil, err
	}
	certgen := "/usr/lib/squid/security_file_certgen"
	if _, err := os.Stat(certgen); err != nil {
		return nil, fmt.Errorf("squid has no %s: install %s (not squid): it is the build with ssl_bump", certgen, SquidPackage)
	}
	addr, err := freeLoopbackPort(ctx)
	if err != nil {
		return nil, err
	}
	var conf strings.Builder
	if err := squidConf.Execute(&conf, map[string]any{"Dir": o.Dir, "Addr": addr, "Token": o.Token, "Certgen": certgen}); err != nil {
		return nil, fmt.Errorf("squid configuration: %w", err)
	}
	if err := writeFiles(o.Dir, map[string][]byte{"squid.conf": []byte(conf.String()), "ca.pem": o.CA.CertPEM, "ca-key.pem": o.CA.KeyPEM, "upstream-ca.pem": o.UpstreamCA}); err != nil {
		return nil, err
	}
	db := filepath.Join(o.Dir, "ssl_db")
	_ = os.RemoveAll(db)
	if out, err := exec.CommandContext(ctx, certgen, "-c", "-s", db, "-M", "16MB").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("squid: initialise the certificate database: %w: %s", err, lastLine(out))
	}
	if os.Geteuid() == 0 {
		// squid drops root to "proxy", which must write the database and the log.
		if out, err := exec.CommandContext(ctx, "chown", "-R", "proxy:proxy", o.Dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("squid: chown %s: %w: %s", o.Dir, err, lastLine(out))
		}
	}
	return startPeer(ctx, "squid", addr, filepath.Join(o.Dir, "squid.log"), bin, "-N", "-f", filepath.Join(o.Dir, "squid.conf"))
}
