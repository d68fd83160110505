//go:build integration

package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// testKubelet is the kubelet side of exec, attach, port-forward and logs:
// an HTTPS server (self-signed; kube-apiserver does not verify kubelet
// certificates without --kubelet-certificate-authority) that serves the
// kubelet's streaming paths with the same cri-streaming code a real kubelet
// runs. A "container" is this machine: exec runs the command with os/exec
// (so exit codes propagate), attach runs attachCommand, port-forward dials
// 127.0.0.1:<port>.
type testKubelet struct {
	srv  *httptest.Server
	port int32

	// release lets a followed log stream write its second line and end.
	release chan struct{}

	mu      sync.Mutex
	unknown []string // request paths no handler knows, for failure messages
}

// attachCommand is the process attach connects to: it answers each line of
// its stdin and ends at EOF.
var attachCommand = []string{"sh", "-c", `while IFS= read -r l; do echo "attached: $l"; done`}

const (
	logLine1 = "log line 1 before the follow"
	logLine2 = "log line 2 after the release"
)

func startKubelet(t testing.TB) *testKubelet {
	t.Helper()
	k := &testKubelet{release: make(chan struct{})}
	const idle, creation = time.Minute, 30 * time.Second
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := remotecommand.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		remotecommand.ServeExec(w, r, k, r.PathValue("pod"), "", r.PathValue("container"), r.URL.Query()["command"],
			opts, idle, creation, remotecommand.SupportedStreamingProtocols)
	})
	mux.HandleFunc("/attach/{ns}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := remotecommand.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		remotecommand.ServeAttach(w, r, k, r.PathValue("pod"), "", r.PathValue("container"),
			opts, idle, creation, remotecommand.SupportedStreamingProtocols)
	})
	mux.HandleFunc("/portForward/{ns}/{pod}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		portforward.ServePortForward(w, r, k, r.PathValue("pod"), "", opts, idle, creation, portforward.SupportedProtocols)
	})
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", k.containerLogs)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.unknown = append(k.unknown, r.Method+" "+r.URL.Path)
		k.mu.Unlock()
		http.NotFound(w, r)
	})
	k.srv = httptest.NewUnstartedServer(mux)
	k.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	_, port, _ := net.SplitHostPort(k.srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	k.port = int32(p)
	return k
}

// unknownPaths lists the requests no handler served.
func (k *testKubelet) unknownPaths() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.unknown...)
}

// ExecInContainer runs cmd here.
func (k *testKubelet) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if len(cmd) == 0 {
		return errors.New("no command")
	}
	return run(ctx, cmd, in, out, errOut)
}

// AttachContainer connects the streams to a fresh attachCommand process.
func (k *testKubelet) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errOut io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize) error {
	return run(ctx, attachCommand, in, out, errOut)
}

func run(ctx context.Context, argv []string, in io.Reader, out, errOut io.Writer) error {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if in != nil {
		c.Stdin = in
	}
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	c.WaitDelay = 5 * time.Second // a stdin copy blocked on the client does not hold the stream
	err := c.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

// PortForward connects the stream to 127.0.0.1:port, this "pod"'s network.
func (k *testKubelet) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer func() { _ = stream.Close() }()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// containerLogs writes logLine1; when following, it flushes, waits for
// release and then writes logLine2, so a test sees whether the first line
// arrives before the stream ends.
func (k *testKubelet) containerLogs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = fmt.Fprintln(w, logLine1)
	if r.URL.Query().Get("follow") != "true" {
		return
	}
	_ = http.NewResponseController(w).Flush()
	select {
	case <-k.release:
	case <-r.Context().Done():
		return
	}
	_, _ = fmt.Fprintln(w, logLine2)
}

// registerNode creates a Node that the apiserver reaches at 127.0.0.1 on
// the kubelet's port (an InternalIP only: a Hostname address would be
// tried first and not resolve), and a Running Pod with one container "main"
// bound to it. It declares no node features, so the apiserver translates
// WebSocket exec and port-forward to SPDY towards the kubelet.
func (k *testKubelet) registerNode(t testing.TB, ns, pod string) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kubelet-" + ns}}
	node, err := cp.Clientset.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Clientset.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
	})
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = k.port
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := cp.Clientset.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod},
		Spec: corev1.PodSpec{
			NodeName:   node.Name,
			Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/none:0", Stdin: true}},
		},
	}
	p, err = cp.Clientset.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "main", Image: "registry.invalid/none:0", Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}
	if p, err = cp.Clientset.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The apiserver finds the node (possibly through an informer): wait
	// until it reaches the kubelet directly before any test goes through the
	// gateway.
	waitFor(t, "the apiserver to reach the test kubelet", func() bool {
		raw, err := cp.Clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
		return err == nil && string(raw) == logLine1+"\n"
	})
	return p
}

// echoServer answers each line it reads with "echo: <line>".
func echoServer(t testing.TB) int32 {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				s := bufio.NewScanner(conn)
				for s.Scan() {
					if _, err := fmt.Fprintf(conn, "echo: %s\n", s.Text()); err != nil {
						return
					}
				}
			}()
		}
	}()
	return int32(l.Addr().(*net.TCPAddr).Port)
}
