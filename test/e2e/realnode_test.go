//go:build e2e

package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/connectors-io/connectors/internal/testbed"
)

// quickstartJob is step 3 of the quick start, exactly as the seed gives it
// (hack/demo.sh applies the same file).
func quickstartJob(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "quickstart-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// podWithTheKubeconfig is a pod of the quick start's image that mounts the
// connector's kubeconfig at /opt/kube and runs script (the quick start's
// inspect-k8s-access pod: `sleep 3600`).
func podWithTheKubeconfig(name, script, tokenExpiration string) string {
	attrs := `            connector.name: "k8s-connector"
            configuration.names: "kubeconfig"
`
	if tokenExpiration != "" {
		attrs += `            token.expiration: "` + tokenExpiration + `"
`
	}
	return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: kubectl
    image: bitnami/kubectl:1.30.1
    imagePullPolicy: IfNotPresent
    env:
    - name: KUBECONFIG
      value: /opt/kube/kubeconfig
    command: ["sh", "-c", ` + fmt.Sprintf("%q", script) + `]
    volumeMounts:
    - name: kubeconfig
      mountPath: /opt/kube
  volumes:
  - name: kubeconfig
    csi:
      readOnly: true
      driver: connectors-csi
      volumeAttributes:
` + attrs
}

// tokenExpiry reads the exp claim of a JWT (no verification: the test only
// needs to know when the kubelet's token expires).
func tokenExpiry(t *testing.T, token string) time.Time {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		t.Fatal("the mounted token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return time.Unix(claims.Exp, 0)
}

func TestTheQuickStartOnARealNode(t *testing.T) {
	rn := testbed.StartRealNode(t)
	// Registered before InstallConnectors: it runs once the processes
	// stopped and before the node is torn down.
	t.Cleanup(func() { captureNodeLogs(t, rn) })
	// The kubelet's tokens for the driver live 10 minutes, the API
	// server's minimum, so that a refresh happens within the test.
	conn := rn.InstallConnectors(t, testbed.InstallOptions{Binary: binary(t), TokenExpiration: 10 * time.Minute})
	registerSecret(t, rn, conn.Namespace, "connectors-gateway-ca")
	k := func(stdin string, args ...string) string { t.Helper(); return rn.MustRun(t, stdin, args...) }
	// A pod that keeps using the connector across its first token's expiry,
	// started first: its wait is the longest.
	ns, address := walkQuickStart(t, rn, conn, func(t *testing.T) string { return readLog(t, rn.LogsDir()+"/connectors-gateway.log") },
		podWithTheKubeconfig("refresher", "while true; do if kubectl get --raw /version >/dev/null 2>&1; then echo ok $(date +%s); else echo fail $(date +%s); fi; sleep 15; done", "10m"))

	t.Run("a deleted pod's token is refused by the gateway within 2 s of the pod being gone", func(t *testing.T) {
		k(podWithTheKubeconfig("revoked", "sleep 3600", ""), "apply", "-n", ns, "-f", "-")
		k("", "wait", "--for=condition=Ready", "pod/revoked", "-n", ns, "--timeout=120s")
		token := strings.TrimSpace(k("", "exec", "revoked", "-n", ns, "--", "cat", "/opt/kube/context.token"))
		captured.Secret(token)
		if code := connectThroughTheGateway(t, rn, conn, ns+"/k8s-connector", token, address); code != http.StatusOK {
			t.Fatalf("before the deletion CONNECT answered %d, want 200", code)
		}
		k("", "delete", "pod", "revoked", "-n", ns, "--grace-period=0", "--force", "--wait=false")
		rn.WaitFor(t, "the pod to be gone", func() error {
			_, err := rn.Clientset.CoreV1().Pods(ns).Get(t.Context(), "revoked", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there: %w", err)
		})
		gone := time.Now()
		for {
			code := connectThroughTheGateway(t, rn, conn, ns+"/k8s-connector", token, address)
			if code == http.StatusProxyAuthRequired {
				break
			}
			if time.Since(gone) > 2*time.Second {
				t.Fatalf("2 s after the pod was gone CONNECT with its token still answered %d, want 407", code)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("the pod keeps working after its first token expired: the kubelet republished a new one", func(t *testing.T) {
		first := strings.TrimSpace(k("", "exec", "refresher", "-n", ns, "--", "cat", "/opt/kube/context.token"))
		captured.Secret(first)
		exp := tokenExpiry(t, first)
		t.Logf("the first token of the pod expires at %s; waiting for it", exp.Format(time.TimeOnly))
		for time.Now().Before(exp.Add(40 * time.Second)) {
			time.Sleep(5 * time.Second)
		}
		now := strings.TrimSpace(k("", "exec", "refresher", "-n", ns, "--", "cat", "/opt/kube/context.token"))
		captured.Secret(now)
		if now == first || !tokenExpiry(t, now).After(exp) {
			t.Fatal("the mounted token was not replaced before the first one expired")
		}
		var last string
		s := bufio.NewScanner(strings.NewReader(k("", "logs", "refresher", "-n", ns)))
		fails := 0
		for s.Scan() {
			last = s.Text()
			if strings.HasPrefix(last, "fail") {
				fails++
			}
		}
		var at int64
		if _, err := fmt.Sscanf(last, "ok %d", &at); err != nil || time.Unix(at, 0).Before(exp) {
			t.Errorf("the last call of the pod (%q) did not succeed after the first token expired at %s", last, exp.Format(time.TimeOnly))
		}
		if fails > 0 {
			t.Errorf("%d calls of the pod failed", fails)
		}
	})
}

// walkQuickStart walks the quick start on a node where Connectors run: the
// namespace and the target's credential (a ServiceAccount of the node's own
// cluster that may list pods), the Secret and the Connector as written
// (address and token replaced), the Job, and the inspect-k8s-access pod,
// checking what the quick start shows. gatewayLog returns the gateway's
// log; first, when set, is a pod applied as soon as the namespace can run
// pods. It returns the namespace and the target's address.
func walkQuickStart(t *testing.T, rn *testbed.RealNode, conn *testbed.Connectors, gatewayLog func(*testing.T) string, first string) (string, string) {
	t.Helper()
	const ns = "k8s-connector-demo"
	k := func(stdin string, args ...string) string { t.Helper(); return rn.MustRun(t, stdin, args...) }

	// 1. The namespace, and the target's credential.
	k("", "create", "ns", ns)
	k("", "create", "serviceaccount", "demo-reader", "-n", ns)
	k("", "create", "clusterrole", "demo-pod-reader", "--verb=get,list,watch", "--resource=pods,namespaces")
	k("", "create", "clusterrolebinding", "demo-pod-reader", "--clusterrole=demo-pod-reader", "--serviceaccount="+ns+":demo-reader")
	target := strings.TrimSpace(k("", "create", "token", "demo-reader", "-n", ns, "--duration=2h"))
	captured.Secret(target)
	address := fmt.Sprintf("https://%s:6443", rn.NodeIP())

	// 2. The Secret and the Connector as written, address and token replaced.
	k(testbed.QuickstartManifests(target, address), "apply", "-n", ns, "-f", "-")
	k("", "wait", "--for=condition=Ready", "connector/k8s-connector", "-n", ns, "--timeout=120s")
	t.Run("kubectl get connector shows the connector Ready", func(t *testing.T) {
		out := k("", "get", "connector", "k8s-connector", "-n", ns)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") {
			t.Fatalf("kubectl get connector printed:\n%s", out)
		}
		row := strings.Fields(lines[1])
		if len(row) < 4 || row[0] != "k8s-connector" || row[1] != "k8s" || row[2] != address || row[3] != "True" {
			t.Errorf("row %q, want k8s-connector k8s %s True", lines[1], address)
		}
	})
	rn.WaitFor(t, "the default ServiceAccount of "+ns, func() error {
		_, err := rn.Run(t.Context(), "", "get", "sa", "default", "-n", ns)
		return err
	})
	if first != "" {
		k(first, "apply", "-n", ns, "-f", "-")
	}

	// 3. The Job.
	t.Run("the Job of the quick start lists the pods of all namespaces", func(t *testing.T) {
		k(quickstartJob(t), "apply", "-n", ns, "-f", "-")
		k("", "wait", "--for=condition=Complete", "job/k8s-access", "-n", ns, "--timeout=180s")
		logs := k("", "logs", "job/k8s-access", "-n", ns)
		if !strings.Contains(logs, "NAMESPACE") || !strings.Contains(logs, ns) || !strings.Contains(logs, "k8s-access-") {
			t.Errorf("kubectl logs job/k8s-access:\n%s", logs)
		}
		if strings.Contains(logs, target) {
			t.Error("the Job's logs hold the target's token")
		}
	})
	t.Run("the request reached the target through the gateway, which audited it", func(t *testing.T) {
		audit := gatewayLog(t)
		if !strings.Contains(audit, `"protocol":"connect","target":"`+rn.NodeIP()+`:6443"`) ||
			!strings.Contains(audit, `"path":"/api/v1/pods"`) || !strings.Contains(audit, `"podName":"k8s-access-`) {
			t.Errorf("no audit lines of the Job's CONNECT and pod list in the gateway's log")
		}
		if strings.Contains(audit, target) {
			t.Error("the gateway's log holds the target's token")
		}
	})

	// 4. The pod of the quick start that shows its kubeconfig.
	k(podWithTheKubeconfig("inspect-k8s-access", "sleep 3600", ""), "apply", "-n", ns, "-f", "-")
	k("", "wait", "--for=condition=Ready", "pod/inspect-k8s-access", "-n", ns, "--timeout=120s")
	t.Run("kubectl exec shows the quick start's kubeconfig, its proxy host resolved by cluster DNS", func(t *testing.T) {
		raw := k("", "exec", "inspect-k8s-access", "-n", ns, "--", "cat", "/opt/kube/kubeconfig")
		captured.Rendered(map[string]string{"kubeconfig": raw})
		cfg, err := clientcmd.Load([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		cluster := cfg.Clusters["k8s"]
		if cluster == nil || cluster.Server != address || cfg.AuthInfos["k8s"] == nil || cfg.AuthInfos["k8s"].Token != "fake-token" || cfg.CurrentContext != "k8s" {
			t.Fatalf("the mounted kubeconfig is not the quick start's (server %s)", address)
		}
		if !strings.HasPrefix(cluster.ProxyURL, "http://"+ns+"%2Fk8s-connector:") || !strings.HasSuffix(cluster.ProxyURL, "@c-k8s-connector."+ns+".svc.cluster.local") {
			t.Errorf("proxy-url does not name the user %s/k8s-connector and the host c-k8s-connector.%s.svc.cluster.local", ns, ns)
		}
		if strings.Contains(raw, target) {
			t.Error("the mounted kubeconfig holds the target's token")
		}
		dns := k("", "exec", "inspect-k8s-access", "-n", ns, "--", "nslookup", "c-k8s-connector."+ns+".svc.cluster.local")
		svc := k("", "get", "service", "connectors-proxy-service", "-n", conn.Namespace, "-o", "jsonpath={.spec.clusterIP}")
		if !strings.Contains(dns, "connectors-proxy-service."+conn.Namespace+".svc.cluster.local") || !strings.Contains(dns, "Address: "+svc) {
			t.Errorf("inside the pod, c-k8s-connector does not resolve through the CNAME to the gateway's Service %s:\n%s", svc, dns)
		}
	})
	return ns, address
}

// connectThroughTheGateway sends CONNECT to the target with the pod token
// from inside the node's namespace and returns the gateway's status.
func connectThroughTheGateway(t *testing.T, rn *testbed.RealNode, c *testbed.Connectors, user, token, target string) int {
	t.Helper()
	conn, err := rn.DialContext(t.Context(), "tcp", c.GatewayAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	host := strings.TrimPrefix(target, "https://")
	auth := base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(user, "/", "%2F") + ":" + token))
	if _, err := fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", host, host, auth); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// captureNodeLogs tees the logs of the connectors processes of the real
// node (LogsDir()/connectors-*.log) into captured.
func captureNodeLogs(t *testing.T, rn *testbed.RealNode) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(rn.LogsDir(), "connectors-*.log"))
	if err != nil {
		t.Error(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Error(err)
			continue
		}
		_, _ = captured.Child().Write(b)
	}
}

// registerSecret registers the values of a Secret of the node in captured
// (but a tls.crt: a certificate is public).
func registerSecret(t *testing.T, rn *testbed.RealNode, ns, name string) {
	t.Helper()
	for key, v := range secretData(t, rn, ns, name) {
		if key != corev1.TLSCertKey {
			captured.Secret(string(v))
		}
	}
}
