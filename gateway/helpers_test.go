//go:build integration

package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

func namespace(t testing.TB, prefix string) string {
	t.Helper()
	return cp.NewNamespace(t, prefix)
}

// env is a running gateway with its token pipeline, in front of the test
// control plane.
type env struct {
	gw       *gateway.Gateway
	addr     string
	admin    string
	ca       []byte
	pipeline *tokens.Pipeline
	install  string
	logs     *testbed.LogCapture // every log line (a child of captured), to assert that no token leaks
	cancel   context.CancelFunc
	done     chan struct{} // closed when Start returned
	err      error         // what Start returned
}

func startGateway(t testing.TB, mod func(*gateway.Options)) *env {
	t.Helper()
	return startGatewayAs(t, cp.Config, namespace(t, "install"), mod)
}

// startGatewayAs runs the gateway with cfg's identity for its informers and
// Secret watches, installed in the namespace install.
func startGatewayAs(t testing.TB, cfg *rest.Config, install string, mod func(*gateway.Options)) *env {
	t.Helper()
	return newInstall(t, cfg, install).start(t, mod)
}

// install is what the replicas of one installation share — its namespace,
// Redis, the shared key and the gateway CA — and the API server they use.
type install struct {
	namespace string
	// cfg is the identity of the informers and Secret watches; api is the
	// API server of the token pipeline, the authorizer and the pod watcher
	// (the test bed's admin by default).
	cfg, api *rest.Config
	redis    *testbed.Redis
	key      []byte
	ca       *gateway.CA
	caPEM    []byte
	secrets  []string // the shared key's forms and the CA key: never logged
	// connectorNamespaces, when set, limits the gateway's connector
	// informer to them (the suite's other tests create connectors
	// cluster-wide at the same time).
	connectorNamespaces []string
}

// newInstall prepares an installation in the namespace ns.
func newInstall(t testing.TB, cfg *rest.Config, ns string) *install {
	t.Helper()
	in := &install{namespace: ns, cfg: cfg, api: cp.Config, redis: testbed.StartRedis(t), key: make([]byte, 32)}
	cp.CreateCASecret(t, ns, "apiserver-ca", cp.Config.CAData)
	_, _ = rand.Read(in.key)
	var caKey []byte
	var err error
	in.ca, in.caPEM, caKey, err = gateway.GenerateCA("connectors test gateway")
	if err != nil {
		t.Fatal(err)
	}
	in.secrets = []string{base64.StdEncoding.EncodeToString(in.key), hex.EncodeToString(in.key), string(caKey)}
	return in
}

// start runs one replica of the installation until the test ends.
func (in *install) start(t testing.TB, mod func(*gateway.Options)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{logs: captured.Child(), cancel: cancel, done: make(chan struct{}), install: in.namespace, ca: in.caPEM}
	for _, s := range in.secrets {
		e.logs.Secret(s)
	}
	rdb, err := tokens.NewRedisClient(tokens.RedisOptions{URL: in.redis.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	api, err := kubernetes.NewForConfig(in.api)
	if err != nil {
		t.Fatal(err)
	}
	e.pipeline, err = tokens.New(tokens.Options{Client: api, RESTConfig: in.api, SharedKey: in.key, Redis: rdb, Logger: e.logs.Logger("gateway")})
	if err != nil {
		t.Fatal(err)
	}
	authz, err := tokens.NewAuthorizer(tokens.AuthorizerOptions{Client: api, Shared: e.pipeline})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := gateway.SecretClient(in.cfg)
	if err != nil {
		t.Fatal(err)
	}
	copts := gateway.CacheOptions(cp.Scheme)
	if len(in.connectorNamespaces) > 0 {
		byObject := copts.ByObject[&connectorsv1alpha1.Connector{}]
		for k, v := range copts.ByObject {
			if _, ok := k.(*connectorsv1alpha1.Connector); ok {
				byObject = v
				delete(copts.ByObject, k)
			}
		}
		byObject.Namespaces = map[string]cache.Config{}
		for _, ns := range in.connectorNamespaces {
			byObject.Namespaces[ns] = cache.Config{}
		}
		copts.ByObject[&connectorsv1alpha1.Connector{}] = byObject
	}
	c, err := cache.New(in.cfg, copts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr, e.admin = l.Addr().String(), al.Addr().String()
	opts := gateway.Options{
		Validator: e.pipeline, Authorizer: authz, CA: in.ca, Cache: c, Client: secrets, Namespace: in.namespace,
		Listener: l, AdminListener: al, Logger: e.logs.Logger("gateway"), ShutdownTimeout: 5 * time.Second, ShutdownDelay: -1,
		// The whole suite runs through the HTTP/2 relay with
		// CONNECTORS_TEST_HTTP2_RELAY=1 (relay_test.go runs both ways always).
		HTTP2Relay: os.Getenv("CONNECTORS_TEST_HTTP2_RELAY") == "1",
	}
	if mod != nil {
		mod(&opts)
	}
	e.gw, err = gateway.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	watcher, err := tokens.NewPodWatcher(tokens.PodWatcherOptions{Client: metadata.NewForConfigOrDie(in.api), Revoker: e.pipeline})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = watcher.Start(ctx) }()
	go func() { _ = e.pipeline.Start(ctx) }()
	go func() { e.err = e.gw.Start(ctx); close(e.done) }()
	t.Cleanup(func() { _ = e.stop() })
	waitReady(t, "http://"+e.admin+"/readyz")
	return e
}

// stop shuts the gateway down and returns what Start returned.
func (e *env) stop() error {
	e.cancel()
	select {
	case <-e.done:
		return e.err
	case <-time.After(30 * time.Second):
		return context.DeadlineExceeded
	}
}

func apiserver() string { return strings.TrimSuffix(cp.Config.Host, "/") }

// readyConnector creates the bearer-token Secret and a Connector whose
// status says Ready with proxy as its address, as the reconciler would
// publish it.
func readyConnector(t testing.TB, ns, name, address, token, proxy string) *connectorsv1alpha1.Connector {
	t.Helper()
	return connectorWith(t, ns, name, address, bearerSecret(token), nil, proxy)
}

// connectorWith creates the credential Secret (sec, named <name>-secret;
// none if nil), the CA Secret (caPEM, named <name>-ca; none if nil) and a
// Connector at address, and publishes a Ready status that describes its
// current generation, as the reconciler would once it has checked it.
func connectorWith(t testing.TB, ns, name, address string, sec *corev1.Secret, caPEM []byte, proxy string) *connectorsv1alpha1.Connector {
	t.Helper()
	return connectorOfClass(t, "k8s", ns, name, address, sec, caPEM, proxy)
}

// connectorOfClass is connectorWith for a connector of the class.
func connectorOfClass(t testing.TB, class, ns, name, address string, sec *corev1.Secret, caPEM []byte, proxy string) *connectorsv1alpha1.Connector {
	t.Helper()
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       connectorsv1alpha1.ConnectorSpec{ConnectorClassName: class, Address: address},
	}
	if sec != nil {
		sec.Namespace, sec.Name = ns, name+"-secret"
		for _, v := range sec.Data {
			captured.Secret(string(v))
		}
		for _, v := range sec.StringData {
			captured.Secret(v)
		}
		if err := cp.Client.Create(t.Context(), sec); err != nil {
			t.Fatal(err)
		}
		authName := "patAuth" // the original's name for token types of its own
		switch sec.Type {
		case connectorsv1alpha1.SecretTypeBearerToken:
			authName = "bearerTokenAuth"
		case corev1.SecretTypeBasicAuth:
			authName = "basicAuth"
		}
		c.Spec.Auth = connectorsv1alpha1.ConnectorAuth{Name: authName, SecretRef: &connectorsv1alpha1.SecretReference{Name: sec.Name}}
	}
	if caPEM != nil {
		ca := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-ca"}, Data: map[string][]byte{"ca.crt": caPEM}}
		if err := cp.Client.Create(t.Context(), ca); err != nil {
			t.Fatal(err)
		}
		c.Spec.CACertSecretRef = &connectorsv1alpha1.LocalSecretReference{Name: ca.Name}
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	setReady(t, c, metav1.ConditionTrue, "", "", proxy)
	return c
}

func setReady(t testing.TB, c *connectorsv1alpha1.Connector, status metav1.ConditionStatus, reason, msg, proxy string) {
	t.Helper()
	cp.PublishStatus(t, c, status, reason, msg, proxy)
	time.Sleep(300 * time.Millisecond) // let the gateway's informer deliver the update
}

// kubeconfig renders the k8s class's kubeconfig through package render,
// exactly as the CSI driver does, for the connector (its proxy address is
// the gateway's), the pod token and the gateway CA, and writes it to a file.
func (e *env) kubeconfig(t testing.TB, c *connectorsv1alpha1.Connector, token tokens.Token) string {
	t.Helper()
	mounted := c.DeepCopy()
	mounted.Status.Proxy = &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{URL: "http://" + e.addr}}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	rendered := testbed.Kubeconfig(t, mounted, token, e.ca)
	e.logs.Secret(string(token))
	e.logs.Rendered(map[string]string{"kubeconfig": string(rendered)})
	if err := os.WriteFile(path, rendered, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectl runs the real kubectl with only the mounted-style kubeconfig.
func kubectl(t testing.TB, kubeconfig string, extraEnv []string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(cp.BinDir, "kubectl"), args...)
	cmd.Env = append([]string{"KUBECONFIG=" + kubeconfig, "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitReady(t testing.TB, url string) {
	t.Helper()
	waitFor(t, url, func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
