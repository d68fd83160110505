//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/connectors-io/connectors/internal/localcluster"
	"github.com/connectors-io/connectors/internal/testbed"
)

// connectorsEntrypoint is the image's entrypoint (hack/image).
const connectorsEntrypoint = "/usr/local/bin/connectors"

// listenFlags are the flags whose value is an address a service listens on.
var listenFlags = []string{"--listen", "--admin-listen", "--listen-control", "--metrics-bind-address", "--health-probe-bind-address"}

// loadCompose loads compose.yaml as `docker compose` does, with every
// profile enabled and env as the whole environment.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	root := testbed.RepoRoot()
	p, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml")}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("connectors", true)
		o.Profiles = []string{"*"}
		o.ResolvePaths = true
	})
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

// argv is what the container runs: its entrypoint (the image's when the
// service sets none, without it) and command, as connectors arguments.
func argv(t *testing.T, s types.ServiceConfig) []string {
	t.Helper()
	args := []string(s.Entrypoint)
	if len(args) > 0 {
		if args[0] != connectorsEntrypoint {
			t.Fatalf("service %s: entrypoint %q, want the image's %s", s.Name, args[0], connectorsEntrypoint)
		}
		args = args[1:]
	}
	return append(slices.Clone(args), s.Command...)
}

// flagValue splits --flag=value.
func flagValue(arg string) (flag, value string, ok bool) {
	if !strings.HasPrefix(arg, "--") {
		return "", "", false
	}
	return strings.Cut(arg, "=")
}

// chartDefaults reads chart/values.yaml.
func chartDefaults(t *testing.T) (image, redisImage string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "chart", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Image struct{ Repository string } `json:"image"`
		Redis struct {
			Bundled struct{ Image string } `json:"bundled"`
		} `json:"redis"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.Image.Repository, v.Redis.Bundled.Image
}

// makefileImage reads the IMAGE default of the Makefile.
func makefileImage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Makefile sets no IMAGE ?= default")
	}
	return string(m[1])
}

// TestComposeServicesAreValidAndRunAsWrittenAgainstARealCluster loads
// compose.yaml with compose-go, checks each service against the image, the
// chart and the binary, then runs the services' commands as written — only
// addresses and mounted paths mapped to this machine — against the test
// bed's apiserver and redis-server: init writes the state, the gateway and
// the controller become ready, and the kubeconfig helper fetches a
// connector's kubeconfig that works through the gateway.
func TestComposeServicesAreValidAndRunAsWrittenAgainstARealCluster(t *testing.T) {
	bin := binary(t)
	home := t.TempDir()
	env := map[string]string{
		"HOME": home, "CONNECTORS_TOKEN_FILE": filepath.Join(home, "token"),
		"CONNECTORS_USER": fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()),
	}
	p := loadCompose(t, env)
	chartImage, chartRedis := chartDefaults(t)
	mine := map[string]types.ServiceConfig{} // the services of the connectors image
	for name, s := range p.Services {
		repo, _, _ := strings.Cut(s.Image, ":")
		if repo == chartImage {
			mine[name] = s
		}
	}
	for _, want := range []string{"init", "gateway", "controller", "kubeconfig"} {
		if _, ok := mine[want]; !ok {
			t.Fatalf("compose.yaml has no service %s of the image %s", want, chartImage)
		}
	}

	t.Run("the services use the project's image and the chart's Redis, hardened", func(t *testing.T) {
		if chartImage != makefileImage(t) {
			t.Errorf("chart image %s, Makefile IMAGE %s", chartImage, makefileImage(t))
		}
		if got := p.Services["redis"].Image; got != chartRedis {
			t.Errorf("redis image %s, the chart's bundled Redis is %s", got, chartRedis)
		}
		if len(p.Services) != len(mine)+1 {
			t.Errorf("services %v: want the connectors image's and redis", slices.Sorted(func(yield func(string) bool) {
				for n := range p.Services {
					if !yield(n) {
						return
					}
				}
			}))
		}
		for name, s := range mine {
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("service %s: read_only %v, cap_drop %v, security_opt %v; want a read-only root, ALL dropped, no-new-privileges", name, s.ReadOnly, s.CapDrop, s.SecurityOpt)
			}
			if name != "init" && s.User != env["CONNECTORS_USER"] {
				t.Errorf("service %s runs as %q, want CONNECTORS_USER", name, s.User)
			}
		}
		for _, name := range []string{"gateway", "controller"} {
			if d := p.Services[name].DependsOn["init"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s starts on init %q, want %q", name, d.Condition, types.ServiceConditionCompletedSuccessfully)
			}
		}
	})

	t.Run("the binary accepts every service's subcommand and flags", func(t *testing.T) {
		for name, s := range mine {
			args := append(argv(t, s), "--help")
			if out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput(); err != nil {
				t.Errorf("service %s: connectors %s: %v\n%s", name, strings.Join(args, " "), err, out)
			}
		}
	})

	t.Run("the files the commands name are in the service's mounts; only init writes", func(t *testing.T) {
		for name, s := range mine {
			for _, arg := range argv(t, s) {
				if _, value, ok := flagValue(arg); ok && strings.HasPrefix(value, "/") {
					v, found := mountOf(s, value)
					if !found {
						t.Errorf("service %s: %s is in none of its volumes", name, arg)
					} else if v.ReadOnly == (name == "init") {
						t.Errorf("service %s: %s is on a mount with read_only %v", name, value, v.ReadOnly)
					}
				}
			}
		}
	})

	t.Run("published ports are on loopback and served by a listen flag", func(t *testing.T) {
		for name, s := range p.Services {
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("service %s publishes %d on %q, want 127.0.0.1 only", name, port.Target, port.HostIP)
				}
				if !slices.Contains(listenPorts(t, s), int(port.Target)) {
					t.Errorf("service %s publishes %d, on which it does not listen", name, port.Target)
				}
			}
		}
		if len(p.Services["redis"].Ports) != 0 {
			t.Error("redis is published: the token cache must stay on the project's network")
		}
	})

	t.Run("init, gateway, controller and the kubeconfig helper run as written", func(t *testing.T) {
		runComposeStack(t, bin, p, home)
	})
}

// mountOf returns the volume of s that holds path.
func mountOf(s types.ServiceConfig, path string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if path == v.Target || strings.HasPrefix(path, v.Target+"/") {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// listenPorts returns the ports of s's listen flags.
func listenPorts(t *testing.T, s types.ServiceConfig) []int {
	t.Helper()
	var ports []int
	for _, arg := range argv(t, s) {
		if flag, value, ok := flagValue(arg); ok && slices.Contains(listenFlags, flag) {
			_, port, found := strings.Cut(value, ":")
			n, err := strconv.Atoi(port)
			if !found || err != nil {
				t.Fatalf("service %s: %s is not [host]:port", s.Name, arg)
			}
			ports = append(ports, n)
		}
	}
	return ports
}

// composeHost maps the stack onto this machine: every address a service
// listens on becomes a free loopback port, and every name of it (service:port
// on the project's network, 127.0.0.1:published on the host) that address;
// named volumes become directories, bind mounts their sources.
type composeHost struct {
	t       *testing.T
	project *types.Project
	volumes map[string]string // named volume → directory
	listen  map[string]string // "service:port" → 127.0.0.1:free
	names   *strings.Replacer
}

func newComposeHost(t *testing.T, p *types.Project, redisAddr string) *composeHost {
	h := &composeHost{t: t, project: p, volumes: map[string]string{}, listen: map[string]string{}}
	for name := range p.Volumes {
		h.volumes[name] = filepath.Join(t.TempDir(), name)
	}
	var pairs []string
	// The image's Redis listens on 6379; the test bed's stands in for it.
	pairs = append(pairs, "redis:6379", redisAddr)
	for name, s := range p.Services {
		for _, port := range listenPorts(t, s) {
			free, err := localcluster.FreePort(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			addr := "127.0.0.1:" + strconv.Itoa(free)
			h.listen[name+":"+strconv.Itoa(port)] = addr
			pairs = append(pairs, name+":"+strconv.Itoa(port), addr)
			for _, pub := range s.Ports {
				if int(pub.Target) == port {
					pairs = append(pairs, pub.HostIP+":"+pub.Published, addr)
				}
			}
		}
	}
	h.names = strings.NewReplacer(pairs...)
	return h
}

// args returns the connectors arguments of service name with its listen
// addresses, the addresses of others and its mounted paths mapped; a
// command replaces the service's, as `docker compose run SERVICE COMMAND`
// does.
func (h *composeHost) args(name string, command ...string) []string {
	t := h.t
	s := h.project.Services[name]
	if command != nil {
		s.Command = command
	}
	var out []string
	for _, arg := range argv(t, s) {
		flag, value, ok := flagValue(arg)
		switch {
		case ok && slices.Contains(listenFlags, flag):
			_, port, _ := strings.Cut(value, ":")
			arg = flag + "=" + h.listen[name+":"+port]
		case ok && strings.HasPrefix(value, "/"):
			arg = flag + "=" + h.path(s, value)
		case ok:
			arg = flag + "=" + h.names.Replace(value)
		}
		out = append(out, arg)
	}
	return out
}

// path maps a path inside service s to this machine.
func (h *composeHost) path(s types.ServiceConfig, path string) string {
	v, ok := mountOf(s, path)
	if !ok {
		h.t.Fatalf("service %s: %s is in none of its volumes", s.Name, path)
	}
	rest := strings.TrimPrefix(path, v.Target)
	if v.Type == types.VolumeTypeVolume {
		return h.volumes[v.Source] + rest
	}
	return v.Source + rest
}

// start runs service name until the test ends; ready is polled on its
// mapped address for container port readyPort.
func (h *composeHost) start(bin, name string, readyPort int, readyPath string, logs *testbed.LogCapture) {
	t := h.t
	cmd := exec.CommandContext(context.WithoutCancel(t.Context()), bin, h.args(name)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("compose service %s exited with %v after SIGTERM, want 0", name, err)
			}
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			if err := <-exited; err != nil {
				t.Logf("killed: %v", err)
			}
			t.Errorf("compose service %s did not stop within 40s of SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("compose service %s logged:\n%s", name, logs.Text())
		}
	})
	ready := "http://" + h.listen[name+":"+strconv.Itoa(readyPort)] + readyPath
	waitFor(t, "compose service "+name+" ready on "+ready, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("compose service %s exited: %v\n%s", name, err, logs.Text())
		default:
		}
		return answersOK(t, ready)
	})
}

func runComposeStack(t *testing.T, bin string, p *types.Project, home string) {
	cp := testbed.StartControlPlane(t)
	redis := testbed.StartRedis(t)
	// The mounted kubeconfig is ~/.kube/config of the compose user.
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(cp.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), admin, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newComposeHost(t, p, redis.Addr)

	out, err := exec.CommandContext(t.Context(), bin, h.args("init")...).CombinedOutput()
	_, _ = captured.Write(out)
	if err != nil || !strings.Contains(string(out), "wrote ca.key, ca.crt, shared.key") {
		t.Fatalf("init: %v\n%s", err, out)
	}
	again, err := exec.CommandContext(t.Context(), bin, h.args("init")...).CombinedOutput()
	_, _ = captured.Write(again)
	if err != nil || !strings.Contains(string(again), "kept") {
		t.Fatalf("init again: %v\n%s", err, again)
	}
	// The shared key init wrote (the CA key is a PEM private key: Check
	// finds any).
	for _, arg := range h.args("gateway") {
		if file, ok := strings.CutPrefix(arg, "--shared-key-file="); ok {
			key, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			captured.Secret(string(key))
		}
	}

	// What the header of compose.yaml asks of the cluster: the install
	// namespace, the classes and a CA Secret of the target.
	cp.CreateNamespace(t, "connectors-system")
	cp.InstallK8sClass(t)
	cp.CreateCASecret(t, "connectors-system", "target-ca", cp.Config.CAData)

	gatewayLog, controllerLog := captured.Child(), captured.Child()
	h.start(bin, "gateway", 9090, "/readyz", gatewayLog)
	h.start(bin, "controller", 8082, "/readyz", controllerLog)

	const ns = "compose-demo"
	cp.MustKubectl(t, "", "create", "ns", ns)
	cp.MustKubectl(t, "", "create", "serviceaccount", "demo-reader", "-n", ns)
	cp.MustKubectl(t, "", "create", "clusterrole", "compose-pod-reader", "--verb=get,list,watch", "--resource=pods,namespaces")
	cp.MustKubectl(t, "", "create", "clusterrolebinding", "compose-pod-reader", "--clusterrole=compose-pod-reader", "--serviceaccount="+ns+":demo-reader")
	target := strings.TrimSpace(cp.MustKubectl(t, "", "create", "token", "demo-reader", "-n", ns, "--duration=1h"))
	captured.Secret(target)
	cp.MustKubectl(t, testbed.QuickstartManifests(target, cp.Config.Host), "apply", "-n", ns, "-f", "-")
	cp.MustKubectl(t, "", "wait", "--for=condition=Ready", "connector/k8s-connector", "-n", ns, "--timeout=120s")

	// The user's own ServiceAccount token, in CONNECTORS_TOKEN_FILE.
	cp.MustKubectl(t, "", "create", "serviceaccount", "developer", "-n", ns)
	mine := strings.TrimSpace(cp.MustKubectl(t, "", "create", "token", "developer", "-n", ns, "--duration=10m"))
	captured.Secret(mine)
	if err := os.WriteFile(filepath.Join(home, "token"), []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	// docker compose run --rm kubeconfig -n compose-demo --connector k8s-connector
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, h.args("kubeconfig", "-n", ns, "--connector", "k8s-connector")...)
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(&stderr, captured)
	if err := cmd.Run(); err != nil {
		t.Fatalf("the kubeconfig helper: %v\n%s", err, stderr.String())
	}
	cfg, err := clientcmd.Load(stdout.Bytes())
	if err != nil {
		t.Fatalf("the helper printed no kubeconfig: %v", err)
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	// The controller's --proxy-url-template names the gateway published on
	// 127.0.0.1:8080, which is the gateway's mapped address here. (The URL
	// carries the proxy token: never print it.)
	proxy, err := url.Parse(cluster.ProxyURL)
	if err != nil || proxy.Scheme != "http" || proxy.Host != h.listen["gateway:8080"] {
		t.Fatalf("the kubeconfig's proxy-url is not http://%s (the gateway published on 127.0.0.1:8080)", h.listen["gateway:8080"])
	}
	kubeconfig := filepath.Join(t.TempDir(), "connector.kubeconfig")
	if err := os.WriteFile(kubeconfig, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	list, _, err := run(t, nil, "", testbed.KubectlPath(t), "--kubeconfig", kubeconfig, "get", "serviceaccounts", "-n", ns, "-o", "name")
	if err == nil {
		t.Fatalf("serviceaccounts are not the target token's to list, yet kubectl printed %q", list)
	}
	list, errOut, err := run(t, nil, "", testbed.KubectlPath(t), "--kubeconfig", kubeconfig, "get", "namespaces", "-o", "name")
	if err != nil || !strings.Contains(list, "namespace/"+ns) {
		t.Fatalf("kubectl through the compose gateway: %v\n%s\n%s", err, list, errOut)
	}
	waitFor(t, "the gateway's audit line of the namespace list", func() bool {
		return strings.Contains(gatewayLog.Text(), `"path":"/api/v1/namespaces"`)
	})
	for _, logs := range []*testbed.LogCapture{gatewayLog, controllerLog} {
		logs.Secret(target)
		logs.Secret(mine)
		logs.Rendered(map[string]string{"kubeconfig": stdout.String()})
		if err := logs.Check(); err != nil {
			t.Error(err)
		}
	}
	if strings.Contains(stderr.String(), mine) {
		t.Error("the helper's stderr holds the caller's token")
	}
}
