package testbed

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/localcluster"
)

// ControlPlane is a running kube-apiserver and etcd with the project's CRDs
// installed. Its clients act as cluster admin.
type ControlPlane struct {
	// Config is a cluster-admin REST config.
	Config *rest.Config
	// Scheme knows the core types and the connectors API.
	Scheme *runtime.Scheme
	// Client is a controller-runtime client (uncached) on Config.
	Client client.Client
	// Clientset is a client-go clientset on Config.
	Clientset kubernetes.Interface
	// KubeconfigPath is an admin kubeconfig file for kubectl and helm.
	KubeconfigPath string
	// BinDir holds etcd, kube-apiserver, kubectl and helm.
	BinDir string
	// UserToken is a static bearer token of the user "alice" (groups
	// "developers"): a caller that is not a ServiceAccount.
	UserToken string

	lc         *localcluster.ControlPlane
	dir        string
	seq        atomic.Int64 // NewNamespace suffixes
	classOnce  sync.Once    // InstallK8sClass
	targetOnce sync.Once    // TargetToken's ClusterRole
}

// NewControlPlane starts a control plane. Use StartControlPlane in tests;
// this form is for TestMain, which must call Stop.
func NewControlPlane() (*ControlPlane, error) {
	bins, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("testbed: core scheme: %w", err)
	}
	if err := connectorsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("testbed: connectors scheme: %w", err)
	}
	dir, err := os.MkdirTemp("", "connectors-testbed-")
	if err != nil {
		return nil, fmt.Errorf("testbed: temp dir: %w", err)
	}
	userToken := "alice-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(userToken+",alice,alice-uid,developers\n"), 0o600); err != nil {
		return nil, fmt.Errorf("testbed: write the static token file: %w", err)
	}
	lc, err := localcluster.StartControlPlane(localcluster.ControlPlaneOptions{
		Bins:    bins,
		CRDDirs: []string{filepath.Join(RepoRoot(), "chart", "crds")},
		Scheme:  scheme,
		// A static token of a user who is not a ServiceAccount.
		APIServerFlags: map[string]string{"token-auth-file": tokenFile},
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("testbed: %w", err), os.RemoveAll(dir))
	}
	cfg := lc.Config
	cp := &ControlPlane{Config: cfg, Scheme: scheme, BinDir: bins, UserToken: userToken, lc: lc, dir: dir}
	if err := cp.init(); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}

func (cp *ControlPlane) init() error {
	var err error
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: cp.Scheme}); err != nil {
		return fmt.Errorf("testbed: client: %w", err)
	}
	if cp.Clientset, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return fmt.Errorf("testbed: clientset: %w", err)
	}
	cp.KubeconfigPath = filepath.Join(cp.dir, "admin.kubeconfig")
	if err := os.WriteFile(cp.KubeconfigPath, cp.lc.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("testbed: write admin kubeconfig: %w", err)
	}
	return nil
}

// StartControlPlane starts a control plane that is stopped when the test ends.
func StartControlPlane(tb testing.TB) *ControlPlane {
	tb.Helper()
	cp, err := NewControlPlane()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			tb.Errorf("testbed: stop control plane: %v", err)
		}
	})
	return cp
}

// Stop stops the apiserver and etcd and removes their files.
func (cp *ControlPlane) Stop() error {
	err := cp.lc.Stop()
	if cp.dir != "" {
		err = errors.Join(err, os.RemoveAll(cp.dir))
	}
	if err != nil {
		return fmt.Errorf("testbed: stop: %w", err)
	}
	return nil
}

// Kubectl runs the test bed's kubectl against the control plane as cluster
// admin, with stdin as its input, and returns its stdout and stderr.
func (cp *ControlPlane) Kubectl(ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, filepath.Join(cp.BinDir, "kubectl"), append([]string{"--kubeconfig", cp.KubeconfigPath}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.KubeconfigPath)
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}

// MustKubectl is Kubectl that fails the test on error and returns stdout.
func (cp *ControlPlane) MustKubectl(tb testing.TB, stdin string, args ...string) string {
	tb.Helper()
	out, _, err := cp.Kubectl(tb.Context(), stdin, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// CreateNamespace creates a namespace (and, since envtest runs no
// controllers, its "default" ServiceAccount).
func (cp *ControlPlane) CreateNamespace(tb testing.TB, name string) *corev1.Namespace {
	tb.Helper()
	ns := &corev1.Namespace{}
	ns.Name = name
	if err := cp.Client.Create(tb.Context(), ns); err != nil {
		tb.Fatalf("testbed: create namespace %s: %v", name, err)
	}
	cp.CreateServiceAccount(tb, name, "default")
	return ns
}

// CreateServiceAccount creates a ServiceAccount.
func (cp *ControlPlane) CreateServiceAccount(tb testing.TB, namespace, name string) *corev1.ServiceAccount {
	tb.Helper()
	sa := &corev1.ServiceAccount{}
	sa.Namespace, sa.Name = namespace, name
	if err := cp.Client.Create(tb.Context(), sa); err != nil {
		tb.Fatalf("testbed: create serviceaccount %s/%s: %v", namespace, name, err)
	}
	return sa
}

// CreatePod creates a Pod object that runs as the ServiceAccount. Nothing
// schedules or runs it: it exists so that tokens can be bound to it.
func (cp *ControlPlane) CreatePod(tb testing.TB, namespace, name, serviceAccount string) *corev1.Pod {
	tb.Helper()
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = namespace, name
	pod.Spec.ServiceAccountName = serviceAccount
	pod.Spec.Containers = []corev1.Container{{Name: "main", Image: "registry.invalid/none:0"}}
	if err := cp.Client.Create(tb.Context(), pod); err != nil {
		tb.Fatalf("testbed: create pod %s/%s: %v", namespace, name, err)
	}
	return pod
}

// Main runs a test package against one control plane shared by its tests:
// call it from TestMain. It stores the control plane in *into, runs the
// tests, stops the control plane and exits with the tests' status.
func Main(m *testing.M, into **ControlPlane) { os.Exit(run(m, (*testing.M).Run, into)) }

// run starts the control plane into *into, runs the tests with tests (which
// returns their exit code) and stops the control plane.
func run(m *testing.M, tests func(*testing.M) int, into **ControlPlane) int {
	cp, err := NewControlPlane()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*into = cp
	code := tests(m)
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// MainChecked is Main for packages that capture the logs of their
// components: the control plane's own credentials (the static user token,
// a bearer token of the admin config) are registered in logs, and after
// the tests pass it fails the run when a secret was logged, or when a full
// run (no -run filter) logged no line holding mustLog or registered fewer
// than five secrets — the check would then have looked at nothing.
func MainChecked(m *testing.M, into **ControlPlane, logs *LogCapture, mustLog string) {
	os.Exit(run(m, func(m *testing.M) int {
		logs.Secret((*into).UserToken)
		logs.Secret((*into).Config.BearerToken)
		return checked(m.Run(), logs, mustLog)
	}, into))
}

// MainLogs is MainChecked for packages that start no shared control plane
// (their tests start what they run, e.g. the connectors binary as
// processes): it runs the tests and then checks logs as MainChecked does.
func MainLogs(m *testing.M, logs *LogCapture, mustLog string) {
	os.Exit(checked(m.Run(), logs, mustLog))
}

// checked is the exit code of a run that ended with code, once logs are
// checked when the tests passed.
func checked(code int, logs *LogCapture, mustLog string) int {
	if code != 0 {
		return code
	}
	if err := checkLogs(logs, mustLog); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func checkLogs(logs *LogCapture, mustLog string) error {
	if err := logs.Check(); err != nil {
		return err
	}
	run := flag.Lookup("test.run")
	if full := run == nil || run.Value.String() == ""; full && (logs.Secrets() < 5 || !strings.Contains(logs.Text(), mustLog)) {
		return fmt.Errorf("log capture: the components' logs were not captured (%d secrets, %d bytes, no %q)", logs.Secrets(), len(logs.Text()), mustLog)
	}
	return nil
}

// NewNamespace creates a namespace named prefix-<unique suffix> (and its
// default ServiceAccount) and returns its name.
func (cp *ControlPlane) NewNamespace(tb testing.TB, prefix string) string {
	tb.Helper()
	name := fmt.Sprintf("%s-%d", prefix, cp.seq.Add(1))
	cp.CreateNamespace(tb, name)
	return name
}
