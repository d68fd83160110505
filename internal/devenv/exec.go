package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/tokens"
)

// ExecOptions describe a workload run by Exec.
type ExecOptions struct {
	// Clientset acts as the kubelet (admin of the local cluster). Required.
	Clientset kubernetes.Interface
	// Socket is the CSI driver's unix socket. Required.
	Socket string
	// Namespace the pod runs in. Required.
	Namespace string
	// ServiceAccount the pod runs as. Default "default" (created if missing).
	ServiceAccount string
	// Connector is NAME (in Namespace) or NS/NAME.
	Connector string
	// Configurations is configuration.names. Default "kubeconfig".
	Configurations string
	// Command and its arguments.
	Command []string
	// Stdin, Stdout and Stderr of the command.
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
}

// UserError is a failure to report to the user as is (the driver's message).
type UserError struct{ Message string }

func (e *UserError) Error() string { return e.Message }

// Exec runs a command the way a kubelet runs a pod with the quick start's
// connectors-csi volume: it creates the ServiceAccount (if missing) and a
// Pod object, publishes the volume into a temporary directory with a
// kubelet-style token, runs the command with KUBECONFIG (when the volume has
// a kubeconfig) and CONNECTORS_DIR, then unpublishes and deletes the pod.
// It returns the command's exit code.
func Exec(ctx context.Context, o ExecOptions) (int, error) {
	if o.ServiceAccount == "" {
		o.ServiceAccount = "default"
	}
	if o.Configurations == "" {
		o.Configurations = "kubeconfig"
	}
	if len(o.Command) == 0 {
		return 0, &UserError{"no command: give it after --"}
	}
	cs := o.Clientset
	if err := ensureServiceAccount(ctx, cs, o.Namespace, o.ServiceAccount); err != nil {
		return 0, err
	}
	pod, err := cs.CoreV1().Pods(o.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: "dev-exec-" + rand.String(6)},
		Spec: corev1.PodSpec{
			ServiceAccountName: o.ServiceAccount, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "main", Image: "local/dev-exec", Command: o.Command[:1]}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("create the workload pod in %s: %w", o.Namespace, err)
	}
	defer func() {
		_ = cs.CoreV1().Pods(o.Namespace).Delete(context.WithoutCancel(ctx), pod.Name, metav1.DeleteOptions{})
	}()

	// The kubelet requests the token of the CSIDriver's tokenRequests.
	tr, err := cs.CoreV1().ServiceAccounts(o.Namespace).CreateToken(ctx, o.ServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:      []string{tokens.DefaultAudience},
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("request the pod's token: %w", err)
	}
	tokensJSON, err := json.Marshal(map[string]any{tokens.DefaultAudience: map[string]any{
		"token": tr.Status.Token, "expirationTimestamp": tr.Status.ExpirationTimestamp.Time,
	}})
	if err != nil {
		return 0, fmt.Errorf("encode the pod's token: %w", err)
	}

	dir, err := os.MkdirTemp("", "connectors-dev-exec-")
	if err != nil {
		return 0, fmt.Errorf("volume directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	target := filepath.Join(dir, "volume")

	conn, err := grpc.NewClient("unix://"+o.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, fmt.Errorf("connect to the CSI driver at %s: %w", o.Socket, err)
	}
	defer func() { _ = conn.Close() }()
	node := csipb.NewNodeClient(conn)
	vc := map[string]string{
		csi.KeyPodName: pod.Name, csi.KeyPodNamespace: pod.Namespace, csi.KeyPodUID: string(pod.UID),
		csi.KeyServiceAccountName: o.ServiceAccount, csi.KeyEphemeral: "true",
		csi.KeyServiceAccountTokens: string(tokensJSON), csi.AttrConfigurationNames: o.Configurations,
	}
	if ns, name, ok := strings.Cut(o.Connector, "/"); ok {
		vc[csi.AttrConnectorNamespace], vc[csi.AttrConnectorName] = ns, name
	} else {
		vc[csi.AttrConnectorName] = o.Connector
	}
	volumeID := "csi-" + string(pod.UID)
	pubCtx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err = node.NodePublishVolume(pubCtx, &csipb.NodePublishVolumeRequest{
		VolumeId: volumeID, TargetPath: target, Readonly: true, VolumeContext: vc,
		VolumeCapability: &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY},
		},
	})
	cancel()
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return 0, &UserError{Message: st.Message()}
		}
		return 0, fmt.Errorf("publish the volume: %w", err)
	}
	defer func() {
		unpubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = node.NodeUnpublishVolume(unpubCtx, &csipb.NodeUnpublishVolumeRequest{VolumeId: volumeID, TargetPath: target})
	}()

	cmd := exec.CommandContext(ctx, o.Command[0], o.Command[1:]...)
	cmd.Env = append(os.Environ(), "CONNECTORS_DIR="+target)
	if kc := filepath.Join(target, "kubeconfig"); exists(kc) {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kc)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		return exit.ExitCode(), nil
	default:
		return 0, fmt.Errorf("run %s: %w", o.Command[0], err)
	}
}

func ensureServiceAccount(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		if apierrors.IsNotFound(err) {
			return &UserError{Message: fmt.Sprintf("namespace %s does not exist", ns)}
		}
		return fmt.Errorf("create serviceaccount %s/%s: %w", ns, name, err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
