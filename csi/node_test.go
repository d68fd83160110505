//go:build integration

package csi_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

// The quick start's namespace: the documented proxy user is
// k8s-connector-demo%2Fk8s-connector.
const demoNamespace = "k8s-connector-demo"

func TestTheQuickStartKubeconfigIsMountedAsDocumented(t *testing.T) {
	cp.CreateNamespace(t, demoNamespace)
	applyQuickstart(t, demoNamespace)
	d := startDriver(t, nil)
	reviewer, err := tokens.NewReviewer(cp.Clientset, []string{tokens.DefaultAudience})
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{"connector.name": "k8s-connector", "configuration.names": "kubeconfig"}

	for _, tc := range []struct {
		name          string
		kubeletTokens bool
	}{
		{name: "with the token the kubelet provides for the connectors-proxy audience", kubeletTokens: true},
		{name: "with a token the driver mints when the kubelet provides none", kubeletTokens: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := cp.CreatePod(t, demoNamespace, "k8s-access-"+map[bool]string{true: "kubelet", false: "minted"}[tc.kubeletTokens], "default")
			target := d.target(t, "quickstart-"+pod.Name)
			req := publishRequest(pod, "csi-"+string(pod.UID), target, attrs)
			var kubeletTok string
			if tc.kubeletTokens {
				var exp time.Time
				kubeletTok, exp = cp.RequestToken(t, demoNamespace, "default", testbed.TokenOptions{Audiences: []string{tokens.DefaultAudience}, BoundPod: pod})
				captured.Secret(kubeletTok)
				req.VolumeContext[csi.KeyServiceAccountTokens] = kubeletToken(t, kubeletTok, exp)
			}
			if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
				t.Fatalf("NodePublishVolume: %v", err)
			}
			files := readFiles(t, target)
			captured.Rendered(files)
			if typ := mountType(t, target); typ != "tmpfs" {
				t.Errorf("target is mounted as %q, want a tmpfs", typ)
			}

			raw, err := os.ReadFile(filepath.Join(target, "kubeconfig"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := clientcmd.Load(raw)
			if err != nil {
				t.Fatalf("client-go cannot load the mounted kubeconfig: %v", err)
			}
			if cfg.CurrentContext != "k8s" {
				t.Errorf("current-context = %q, want k8s", cfg.CurrentContext)
			}
			cluster := cfg.Clusters["k8s"]
			if cluster == nil {
				t.Fatal("no cluster k8s")
			}
			if cluster.Server != "https://192.168.1.100:6443" {
				t.Errorf("server = %q, want the connector's address", cluster.Server)
			}
			if string(cluster.CertificateAuthorityData) != string(gatewayCA) {
				t.Error("certificate-authority-data is not the gateway CA")
			}
			if ctx := cfg.Contexts["k8s"]; ctx == nil || ctx.Cluster != "k8s" || ctx.AuthInfo != "k8s" {
				t.Errorf("context k8s = %+v, want cluster k8s and user k8s", ctx)
			}
			if u := cfg.AuthInfos["k8s"]; u == nil || u.Token != "fake-token" {
				t.Error("user k8s does not have the token fake-token")
			}
			if !strings.HasPrefix(cluster.ProxyURL, "http://k8s-connector-demo%2Fk8s-connector:") ||
				!strings.HasSuffix(cluster.ProxyURL, "@c-k8s-connector.k8s-connector-demo.svc.cluster.local") {
				t.Error("proxy-url does not have the documented user and host")
			}
			u, err := url.Parse(cluster.ProxyURL)
			if err != nil {
				t.Fatal("proxy-url does not parse")
			}
			password, _ := u.User.Password()
			if u.User.Username() != "k8s-connector-demo/k8s-connector" || u.Host != "c-k8s-connector.k8s-connector-demo.svc.cluster.local" {
				t.Error("proxy-url user or host differ from the documented ones")
			}
			if tc.kubeletTokens && password != kubeletTok {
				t.Error("the proxy password is not the kubelet-provided token")
			}
			id, err := reviewer.Review(t.Context(), tokens.Token(password))
			if err != nil {
				t.Fatalf("the proxy password is not a valid connectors-proxy token: %v", err)
			}
			if id.Namespace != demoNamespace || id.ServiceAccountName != "default" || id.PodName != pod.Name || id.PodUID != string(pod.UID) {
				t.Errorf("the proxy token speaks for %s, want the pod %s", id, pod.Name)
			}
			if got := files["context.token"]; got != password {
				t.Error("context.token differs from the proxy password")
			}
			for name, content := range allFiles(t, target) {
				if strings.Contains(content, upstreamToken) {
					t.Errorf("file %s contains the Secret's token", name)
				}
			}
			for _, name := range []string{"kubeconfig", "context.token", "context.proxy.caCert", "ca.crt", "http.proxy", "https.proxy", ".env", "connector.status.proxyAddress"} {
				fi, err := os.Stat(filepath.Join(target, name))
				if err != nil {
					t.Errorf("file %s: %v", name, err)
					continue
				}
				if fi.Mode().Perm() != 0o644 {
					t.Errorf("file %s has mode %v, want 0644", name, fi.Mode().Perm())
				}
			}

			unpublish := &csipb.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: target}
			for i := range 2 { // idempotent
				if _, err := d.node.NodeUnpublishVolume(t.Context(), unpublish); err != nil {
					t.Fatalf("NodeUnpublishVolume #%d: %v", i+1, err)
				}
				assertGone(t, target)
			}
		})
	}
}

func TestAPlainDirectoryServesWhereTmpfsIsNotWanted(t *testing.T) {
	ns := namespace(t)
	applyQuickstart(t, ns)
	d := startDriver(t, func(o *csi.Options) { o.PlainDirectory = true })
	pod := cp.CreatePod(t, ns, "plain", "default")
	target := d.target(t, "plain")
	req := publishRequest(pod, "plain", target, map[string]string{"connector.name": "k8s-connector", "configuration.names": "kubeconfig"})
	if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	captured.Rendered(readFiles(t, target))
	if typ := mountType(t, target); typ != "" {
		t.Errorf("target is a %s mount, want a plain directory", typ)
	}
	if _, err := clientcmd.LoadFromFile(filepath.Join(target, "kubeconfig")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.node.NodeUnpublishVolume(t.Context(), &csipb.NodeUnpublishVolumeRequest{VolumeId: "plain", TargetPath: target}); err != nil {
			t.Fatal(err)
		}
		assertGone(t, target)
	}
}

func TestBadRequestsGetTheirCodeAndLeaveNothingMounted(t *testing.T) {
	ns, other := namespace(t), namespace(t)
	applyQuickstart(t, ns)
	createConnector(t, other, "elsewhere", "k8s", true)
	createConnector(t, ns, "broken", "k8s", false)
	bigClass := &connectorsv1alpha1.ConnectorClass{
		ObjectMeta: metav1.ObjectMeta{Name: "big-" + ns},
		Spec: connectorsv1alpha1.ConnectorClassSpec{Configurations: []connectorsv1alpha1.Configuration{{
			Name: "huge", Data: map[string]string{"huge": `{{ range until 200000 }}0123456789{{ end }}`},
		}}},
	}
	if err := cp.Client.Create(t.Context(), bigClass); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), bigClass) })
	createConnector(t, ns, "big", bigClass.Name, true)
	createConnector(t, ns, "changed", "k8s", true)
	var changed connectorsv1alpha1.Connector
	if err := cp.Client.Get(t.Context(), keyOf(ns, "changed"), &changed); err != nil {
		t.Fatal(err)
	}
	changed.Spec.Address = "https://moved.example.com:6443"
	if err := cp.Client.Update(t.Context(), &changed); err != nil {
		t.Fatal(err)
	}
	notChecked := changed.Usable() // the message the gateway and the token API give too
	if notChecked == nil {
		t.Fatal("the changed connector is usable")
	}
	pod := cp.CreatePod(t, ns, "bad-inputs", "default")
	d := startDriver(t, nil)
	everything := "kubeconfig,!kubeconfig,!context.token,!context.proxy.caCert,!ca.crt,!ca.cert,!http.proxy,!https.proxy,!.env,!connector.status.proxyAddress"

	for i, tc := range []struct {
		name  string
		attrs map[string]string
		mod   func(*csipb.NodePublishVolumeRequest)
		want  codes.Code
		text  string
	}{
		{name: "a volume without connector.name is an invalid argument", attrs: map[string]string{"configuration.names": "kubeconfig"},
			want: codes.InvalidArgument, text: "connector.name"},
		{name: "a connector name that is not an object name (.) is an invalid argument, not a retry", attrs: map[string]string{"connector.name": ".", "configuration.names": "kubeconfig"},
			want: codes.InvalidArgument, text: "must be a name or namespace/name of Kubernetes object names"},
		{name: "an encoded path in connectors (%2e%2e) is an invalid argument", attrs: map[string]string{"connectors": "%2e%2e", "configuration.names": "kubeconfig"},
			want: codes.InvalidArgument, text: "must be a name or namespace/name"},
		{name: "a namespace that is not a DNS label is an invalid argument", attrs: map[string]string{"connectors": "Bad_NS/k8s-connector", "configuration.names": "kubeconfig"},
			want: codes.InvalidArgument, text: `"Bad_NS/k8s-connector"`},
		{name: "an unknown connector is not found", attrs: map[string]string{"connector.name": "nope", "configuration.names": "kubeconfig"},
			want: codes.NotFound, text: "connector nope not found in namespace " + ns},
		{name: "a connector of another namespace without RBAC is denied", attrs: map[string]string{"connector.name": "elsewhere", "connector.namespace": other, "configuration.names": "kubeconfig"},
			want: codes.PermissionDenied, text: "may not use connector elsewhere"},
		{name: "a volume that is not readOnly is an invalid argument", attrs: map[string]string{"connector.name": "k8s-connector"},
			mod: func(r *csipb.NodePublishVolumeRequest) { r.Readonly = false }, want: codes.InvalidArgument, text: "readOnly"},
		{name: "an unknown configuration is not found", attrs: map[string]string{"connector.name": "k8s-connector", "configuration.names": "helmconfig"},
			want: codes.NotFound, text: `"helmconfig"`},
		{name: "excluding every file is an invalid argument", attrs: map[string]string{"connector.name": "k8s-connector", "configuration.names": everything},
			want: codes.InvalidArgument, text: "excludes every file"},
		{name: "configuration.params that is not a JSON object of objects is an invalid argument", attrs: map[string]string{"connector.name": "k8s-connector", "configuration.names": "kubeconfig", "configuration.params": `{"kubeconfig":"x"}`},
			want: codes.InvalidArgument, text: "configuration.params must be a JSON object of configuration name to parameter values"},
		{name: "configuration.params naming a configuration the class lacks is an invalid argument", attrs: map[string]string{"connector.name": "k8s-connector", "configuration.names": "kubeconfig", "configuration.params": `{"kubecfg":{"a":"b"}}`},
			want: codes.InvalidArgument, text: `configuration.params names configuration "kubecfg"`},
		{name: "an oversized template output is a failed precondition naming the file", attrs: map[string]string{"connector.name": "big", "configuration.names": "huge"},
			want: codes.FailedPrecondition, text: "configuration huge, file huge"},
		{name: "a connector that is not ready is a failed precondition with its reason", attrs: map[string]string{"connector.name": "broken", "configuration.names": "kubeconfig"},
			want: codes.FailedPrecondition, text: "AuthenticationFailed"},
		{name: "a connector whose spec changed since its last check is a failed precondition with the shared message", attrs: map[string]string{"connector.name": "changed", "configuration.names": "kubeconfig"},
			want: codes.FailedPrecondition, text: notChecked.Error()},
		{name: "a volume without pod info is an invalid argument", attrs: map[string]string{"connector.name": "k8s-connector"},
			mod: func(r *csipb.NodePublishVolumeRequest) { delete(r.VolumeContext, csi.KeyPodUID) }, want: codes.InvalidArgument, text: "podInfoOnMount"},
		{name: "a persistent volume is an invalid argument", attrs: map[string]string{"connector.name": "k8s-connector"},
			mod: func(r *csipb.NodePublishVolumeRequest) { delete(r.VolumeContext, csi.KeyEphemeral) }, want: codes.InvalidArgument, text: "ephemeral"},
		{name: "a too short token.expiration is an invalid argument", attrs: map[string]string{"connector.name": "k8s-connector", "token.expiration": "1m"},
			want: codes.InvalidArgument, text: "token.expiration"},
		{name: "a connector reference with two slashes is an invalid argument", attrs: map[string]string{"connectors": "a/b/c"},
			want: codes.InvalidArgument, text: "namespace/name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := d.target(t, "bad"+string(rune('a'+i)))
			req := publishRequest(pod, "bad", target, tc.attrs)
			if tc.mod != nil {
				tc.mod(req)
			}
			_, err := d.node.NodePublishVolume(t.Context(), req)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code = %s (%v), want %s", got, err, tc.want)
			}
			if !strings.Contains(status.Convert(err).Message(), tc.text) {
				t.Errorf("message %q does not say %q", status.Convert(err).Message(), tc.text)
			}
			assertGone(t, target)
		})
	}
}

func TestAConnectorOfAnotherNamespaceIsUsableWithRBAC(t *testing.T) {
	ns, other := namespace(t), namespace(t)
	applyQuickstart(t, other)
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "use-k8s-connector"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"connectors.alauda.io"}, Resources: []string{"connectors"}, ResourceNames: []string{"k8s-connector"}, Verbs: []string{"get"}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "use-k8s-connector"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "default"}},
	}
	if err := cp.Client.Create(t.Context(), role); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Create(t.Context(), binding); err != nil {
		t.Fatal(err)
	}
	d := startDriver(t, nil)
	pod := cp.CreatePod(t, ns, "rbac", "default")
	target := d.target(t, "rbac")
	req := publishRequest(pod, "rbac", target, map[string]string{"connectors": other + "/k8s-connector", "configuration.names": "kubeconfig"})
	if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
		t.Fatalf("NodePublishVolume with RBAC get on the connector: %v", err)
	}
	files := readFiles(t, target)
	captured.Rendered(files)
	if !strings.Contains(files["http.proxy"], url.QueryEscape(other+"/k8s-connector")) {
		t.Error("http.proxy does not name the other namespace's connector")
	}
}

func TestRepublishRotatesTheTokenAtEightyPercentAndSwapsAtomically(t *testing.T) {
	ns := namespace(t)
	applyQuickstart(t, ns)
	clock := &fakeClock{now: time.Now()}
	d := startDriver(t, func(o *csi.Options) { o.Now = clock.Now })
	pod := cp.CreatePod(t, ns, "republish", "default")
	target := d.target(t, "republish")
	req := publishRequest(pod, "republish", target, map[string]string{"connector.name": "k8s-connector", "configuration.names": "kubeconfig", "token.expiration": "10m"})
	if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(target, "kubeconfig")
	first := readFiles(t, target)
	captured.Rendered(first)
	firstToken := first["context.token"]
	gen := func() string {
		t.Helper()
		g, err := os.Readlink(filepath.Join(target, "..data"))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	inode := func() uint64 {
		t.Helper()
		fi, err := os.Stat(kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	firstGen, firstInode := gen(), inode()

	t.Run("a republish with nothing changed writes nothing", func(t *testing.T) {
		clock.Add(7 * time.Minute) // 70 % of the token's life
		if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		if gen() != firstGen || inode() != firstInode {
			t.Error("the files were rewritten although nothing changed")
		}
	})

	// A reader loops on the file during the swaps below.
	var reads, bad atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(kubeconfig)
			reads.Add(1)
			if err != nil || !strings.HasSuffix(string(b), "current-context: k8s\n") {
				bad.Add(1)
				continue
			}
			if _, err := clientcmd.Load(b); err != nil {
				bad.Add(1)
			}
		}
	}()

	t.Run("a republish after 80 percent of the token's life mints a new token", func(t *testing.T) {
		clock.Add(2 * time.Minute) // 90 %
		if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		now := readFiles(t, target)
		captured.Rendered(now)
		if now["context.token"] == firstToken {
			t.Fatal("the token was not replaced")
		}
		if gen() == firstGen {
			t.Error("..data still points at the first generation")
		}
		cfg, err := clientcmd.LoadFromFile(kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(cfg.Clusters["k8s"].ProxyURL, ":"+now["context.token"]+"@") {
			t.Error("the kubeconfig's proxy-url does not carry the new token")
		}
	})

	t.Run("a changed connector is rewritten at once and readers never see a partial file", func(t *testing.T) {
		for i := range 20 {
			var c connectorsv1alpha1.Connector
			if err := cp.Client.Get(t.Context(), keyOf(ns, "k8s-connector"), &c); err != nil {
				t.Fatal(err)
			}
			c.Spec.Address = "https://192.168.1." + string(rune('0'+i%10)) + ":6443"
			if err := cp.Client.Update(t.Context(), &c); err != nil {
				t.Fatal(err)
			}
			publishStatus(t, ns, "k8s-connector", true) // the reconciler checked the change
			before := gen()
			if _, err := d.node.NodePublishVolume(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			if gen() == before {
				t.Fatalf("swap %d: the changed address was not written", i)
			}
			cfg, err := clientcmd.LoadFromFile(kubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Clusters["k8s"].Server != c.Spec.Address {
				t.Fatalf("server = %q, want the new address %q", cfg.Clusters["k8s"].Server, c.Spec.Address)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	close(stop)
	wg.Wait()
	if reads.Load() < 20 {
		t.Errorf("the reader read only %d times", reads.Load())
	}
	if bad.Load() != 0 {
		t.Errorf("%d of %d reads during the swaps saw a missing or partial kubeconfig", bad.Load(), reads.Load())
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	gens := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") && e.IsDir() {
			gens++
		}
	}
	if gens > 2 {
		t.Errorf("%d generations are kept, want at most 2", gens)
	}
}
