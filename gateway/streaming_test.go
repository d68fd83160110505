//go:build integration

package gateway_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamingThroughTheGateway drives kubectl exec, attach, logs -f and
// port-forward through the gateway to the test control plane, which
// proxies them to a test kubelet, over WebSocket (kubectl's default) and
// SPDY.
func TestStreamingThroughTheGateway(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "streaming")
	c := readyConnector(t, ns, "k8s-connector", apiserver(), cp.TargetToken(t, "streamer"), "http://"+e.addr)
	token, _ := cp.PodToken(t, ns, "k8s-access", "default")
	kc := e.kubeconfig(t, c, token)
	k := startKubelet(t)
	k.registerNode(t, ns, "workload")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet paths without a handler: %q", k.unknownPaths())
		}
	})
	var websockets []string // kubectl's default
	spdy := []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}

	for _, tc := range []struct {
		name     string
		env      []string
		protocol string // the gateway's audit protocol for the upgrade
	}{
		{"exec echo hi answers hi over WebSocket", websockets, "ws"},
		{"exec echo hi answers hi over SPDY", spdy, "spdy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := kubectl(t, kc, tc.env, "", "exec", "-n", ns, "workload", "--", "echo", "hi")
			if err != nil || out != "hi\n" {
				t.Fatalf("kubectl exec = %q, %v\n%s", out, err, errOut)
			}
			assertAudited(t, e, tc.protocol, "/api/v1/namespaces/"+ns+"/pods/workload/exec", 101)
		})
	}

	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"exec -i passes stdin and the non-zero exit code over WebSocket", websockets},
		{"exec -i passes stdin and the non-zero exit code over SPDY", spdy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := kubectl(t, kc, tc.env, "ping\npong\n", "exec", "-i", "-n", ns, "workload", "--", "sh", "-c", "cat; echo done >&2; exit 3")
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
				t.Fatalf("kubectl exec -i ended with %v, want exit code 3\n%s", err, errOut)
			}
			if out != "ping\npong\n" {
				t.Errorf("stdout = %q, want the stdin echoed", out)
			}
			if !strings.Contains(errOut, "done") || !strings.Contains(errOut, "exit code 3") {
				t.Errorf("stderr = %q, want the command's stderr and its exit code", errOut)
			}
		})
	}

	for _, tc := range []struct {
		name     string
		env      []string
		protocol string
	}{
		{"attach -i answers each stdin line over WebSocket", websockets, "ws"},
		{"attach -i answers each stdin line over SPDY", spdy, "spdy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := kubectl(t, kc, tc.env, "one\ntwo\n", "attach", "-i", "-n", ns, "workload", "-c", "main")
			if err != nil {
				t.Fatalf("kubectl attach -i: %v\n%s", err, errOut)
			}
			if out != "attached: one\nattached: two\n" {
				t.Errorf("stdout = %q, want each line answered", out)
			}
			assertAudited(t, e, tc.protocol, "/api/v1/namespaces/"+ns+"/pods/workload/attach", 101)
		})
	}

	t.Run("logs -f shows a line before the stream ends", func(t *testing.T) {
		lines, wait, _ := startKubectl(t, kc, nil, "logs", "-f", "-n", ns, "workload")
		if l := nextLine(t, lines); l != logLine1 {
			t.Fatalf("first line = %q, want %q", l, logLine1)
		}
		// The stream is still open: only now may the kubelet end it.
		select {
		case k.release <- struct{}{}:
		case <-time.After(30 * time.Second):
			t.Fatal("the kubelet's log stream was not waiting to be released")
		}
		if l := nextLine(t, lines); l != logLine2 {
			t.Fatalf("second line = %q, want %q", l, logLine2)
		}
		if err := wait(); err != nil {
			t.Fatalf("kubectl logs -f: %v", err)
		}
	})

	echoPort := echoServer(t)
	for _, tc := range []struct {
		name     string
		env      []string
		protocol string
	}{
		{"port-forward echoes data both ways over WebSocket", websockets, "ws"},
		{"port-forward echoes data both ways over SPDY", spdy, "spdy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, wait, process := startKubectl(t, kc, tc.env, "port-forward", "-n", ns, "pod/workload", fmt.Sprintf(":%d", echoPort), "--address", "127.0.0.1")
			local := forwardedPort(t, lines, echoPort)
			for i, msg := range []string{"first connection", "second connection"} {
				conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(t.Context(), "tcp", local)
				if err != nil {
					t.Fatal(err)
				}
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				r := bufio.NewReader(conn)
				for j := range 3 {
					sent := fmt.Sprintf("%s message %d", msg, j)
					if _, err := fmt.Fprintln(conn, sent); err != nil {
						t.Fatalf("connection %d: write: %v", i, err)
					}
					got, err := r.ReadString('\n')
					if err != nil || got != "echo: "+sent+"\n" {
						t.Fatalf("connection %d: read %q, %v; want the echo of %q", i, got, err, sent)
					}
				}
				_ = conn.Close()
			}
			// The stream, and so its audit line, ends with kubectl.
			if err := process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			_ = wait()
			assertAudited(t, e, tc.protocol, "/api/v1/namespaces/"+ns+"/pods/workload/portforward", 101)
		})
	}

	t.Run("no token reaches the logs", func(t *testing.T) {
		if strings.Contains(e.logs.Text(), string(token)) {
			t.Error("the pod token appears in the gateway's logs")
		}
	})
}

// assertAudited checks that the gateway logged a stream to path with the
// protocol and status, and that bytes went to the client: proof that
// kubectl used the protocol under test and did not fall back.
func assertAudited(t *testing.T, e *env, protocol, path string, status int) {
	t.Helper()
	head := regexp.MustCompile(fmt.Sprintf(`"protocol"=%q "target"=%q "method"="(GET|POST)" "path"=%q "status"=%d "bytes"=([1-9][0-9]*) `,
		protocol, strings.TrimPrefix(apiserver(), "https://"), path, status))
	// The audit line is written when the stream ends, which may be just
	// after kubectl exits.
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs := e.logs.Text()
		if head.MatchString(logs) {
			return
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, path) {
					seen = append(seen, l)
				}
			}
			t.Fatalf("no audit line matching %s; the lines for the path:\n%s", head, strings.Join(seen, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startKubectl starts kubectl with only the kubeconfig and returns its
// stdout lines, a function that waits for it to end and the process. It
// is killed when the test ends.
func startKubectl(t *testing.T, kubeconfig string, extraEnv []string, args ...string) (<-chan string, func() error, *os.Process) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(cp.BinDir, "kubectl"), args...)
	cmd.Env = append([]string{"KUBECONFIG=" + kubeconfig, "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, extraEnv...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	waited := make(chan error, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		waited <- cmd.Wait() // after every read from the pipe
	}()
	wait := sync.OnceValue(func() error {
		select {
		case err := <-waited:
			if err != nil {
				return fmt.Errorf("%w: %s", err, errOut.String())
			}
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("kubectl did not end")
		}
	})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		go func() {
			for range lines {
			}
		}()
		_ = wait()
	})
	return lines, wait, cmd.Process
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("kubectl's output ended")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no line from kubectl")
	}
	return ""
}

var forwarding = regexp.MustCompile(`^Forwarding from (127\.0\.0\.1:\d+) -> (\d+)$`)

// forwardedPort reads kubectl port-forward's announcement of its local
// address for the remote port.
func forwardedPort(t *testing.T, lines <-chan string, remote int32) string {
	t.Helper()
	l := nextLine(t, lines)
	m := forwarding.FindStringSubmatch(l)
	if m == nil || m[2] != strconv.Itoa(int(remote)) {
		t.Fatalf("kubectl port-forward printed %q, want Forwarding from 127.0.0.1:<port> -> %d", l, remote)
	}
	go func() { // drain "Handling connection for" lines
		for range lines {
		}
	}()
	return m[1]
}
