package csi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	lru "github.com/hashicorp/golang-lru/v2"
	"google.golang.org/grpc"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/connectors-io/connectors/internal/version"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

// DriverName is the CSI driver's name (the CSIDriver object's name).
const DriverName = "connectors-csi"

// DriverObject returns the CSIDriver object the chart installs for the
// driver named name (docs/design.md §7): no attach, pod info on mount,
// republish, inline ephemeral volumes only, and a kubelet token for the
// connectors-proxy audience passed in the secrets.
func DriverObject(name string) *storagev1.CSIDriver {
	f, t := false, true
	return &storagev1.CSIDriver{
		TypeMeta:   metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "CSIDriver"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired:       &f,
			PodInfoOnMount:       &t,
			RequiresRepublish:    &t,
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral},
			TokenRequests:        []storagev1.TokenRequest{{Audience: tokens.DefaultAudience}},
			// The kubelet passes the token in the secrets of
			// NodePublishVolume, not in the volume context (which it may log).
			ServiceAccountTokenInSecrets: &t,
		},
	}
}

// Options configure the driver.
type Options struct {
	// Endpoint is the unix socket to serve on, as a path or a unix:// URL
	// (for example unix:///csi/csi.sock). Required.
	Endpoint string
	// NodeID is this node's name (NodeGetInfo). Required.
	NodeID string
	// DriverName is reported by GetPluginInfo. Default DriverName.
	DriverName string
	// Reader reads Connectors and ConnectorClasses (an uncached client is
	// fine). Required.
	Reader client.Reader
	// Clientset mints tokens and asks SubjectAccessReviews. Required unless
	// Minter and Authorizer are both given.
	Clientset kubernetes.Interface
	// Minter mints pod-bound tokens when the kubelet provides none. Default:
	// one on Clientset.
	Minter *tokens.Minter
	// Authorizer decides whether a pod's ServiceAccount may use a connector.
	// Default: one on Clientset (with RequireRBAC).
	Authorizer *tokens.Authorizer
	// RequireRBAC makes the default Authorizer ask for RBAC get on the
	// connector in its own namespace too (by default pods of the
	// connector's namespace may use it without).
	RequireRBAC bool
	// ProxyCACert is the gateway CA certificate (PEM); it becomes
	// .context.proxy.caCert, context.proxy.caCert and ca.crt. Required
	// unless ProxyCA is given.
	ProxyCACert []byte
	// ProxyCA returns the current gateway CA certificate (PEM). It is called
	// on every publish, so a republish after a CA rotation rewrites the
	// files (see CAFile). Default: a function returning ProxyCACert.
	ProxyCA func() ([]byte, error)
	// Audience is the audience of the kubelet-provided token the driver
	// takes from the volume context and of the tokens it mints. Default
	// tokens.DefaultAudience; a Minter given in Minter must use the same.
	Audience string
	// KubeletRoot, when set (for example /var/lib/kubelet), restricts the
	// target paths to <KubeletRoot>/pods/*/volumes/kubernetes.io~csi/*/mount.
	// Default: any absolute path (tests, local runs).
	KubeletRoot string
	// PlainDirectory writes into a plain directory at the target path
	// instead of mounting a tmpfs (for unprivileged local runs). Without
	// it the driver still falls back to a plain directory, with a warning,
	// when mounting is not permitted.
	PlainDirectory bool
	// TmpfsBytes caps the size of each tmpfs. It must hold two generations
	// of the files: at least 2 × RenderLimits.MaxTotalBytes + TmpfsSlack.
	// Default exactly that (9 MiB with the default render limits).
	TmpfsBytes int64
	// RenderLimits bound each rendering. Zero values mean render's defaults.
	RenderLimits render.Limits
	// RefreshAfter is the fraction of a minted token's lifetime after which
	// a republish replaces it. Default 0.8.
	RefreshAfter float64
	// MaxVolumes bounds the per-volume state kept in memory (minted tokens).
	// Default 10000; an evicted volume gets a new token on its next republish.
	MaxVolumes int
	// RegistrationDir, when set, is the kubelet's plugin registration
	// directory (for example /var/lib/kubelet/plugins_registry) as this
	// process sees it: the driver registers itself with the kubelet there,
	// as the csi-node-driver-registrar sidecar would. Use one or the
	// other. Default: none (a sidecar registers the driver).
	RegistrationDir string
	// KubeletEndpoint is the driver's socket as the kubelet sees it (a
	// host path, when the driver runs in a container), told to the kubelet
	// at registration. Default: the socket of Endpoint.
	KubeletEndpoint string
	// ShutdownTimeout bounds the graceful stop of the gRPC server. Default 10s.
	ShutdownTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the driver's logs. Default: discard.
	Logger logr.Logger
}

// TmpfsSlack is the room a tmpfs needs beyond two generations of the
// files: directories, symlinks and the rounding of files to pages.
const TmpfsSlack = 1 << 20

// MinTmpfsBytes is the smallest Options.TmpfsBytes accepted with limits.
func MinTmpfsBytes(limits render.Limits) int64 {
	return 2*int64(render.EffectiveLimits(limits).MaxTotalBytes) + TmpfsSlack
}

// Driver is the CSI Identity and Node services.
type Driver struct {
	csipb.UnimplementedIdentityServer
	csipb.UnimplementedNodeServer

	opts     Options
	socket   string
	resolver *render.Resolver
	volumes  *lru.Cache[string, volumeState]
	locks    keyedMutex
	serving  chan struct{} // closed once Start listens

	registration *registration
}

// volumeState is what the driver remembers about a published volume.
type volumeState struct {
	token    tokens.Token
	issued   time.Time
	expires  time.Time
	selector string // the attributes the token was minted for
}

// New checks opts and fills defaults.
func New(opts Options) (*Driver, error) {
	if opts.Endpoint == "" || opts.NodeID == "" || opts.Reader == nil || (len(opts.ProxyCACert) == 0 && opts.ProxyCA == nil) {
		return nil, errors.New("csi: Options.Endpoint, .NodeID, .Reader and .ProxyCACert (or .ProxyCA) are required")
	}
	if opts.ProxyCA == nil {
		ca := opts.ProxyCACert
		opts.ProxyCA = func() ([]byte, error) { return ca, nil }
	}
	if opts.Audience == "" {
		opts.Audience = tokens.DefaultAudience
	}
	if opts.KubeletRoot != "" && !filepath.IsAbs(opts.KubeletRoot) {
		return nil, fmt.Errorf("csi: Options.KubeletRoot %q must be an absolute path", opts.KubeletRoot)
	}
	if opts.Clientset == nil && (opts.Minter == nil || opts.Authorizer == nil) {
		return nil, errors.New("csi: Options.Clientset is required unless .Minter and .Authorizer are given")
	}
	socket, err := socketPath(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	if opts.DriverName == "" {
		opts.DriverName = DriverName
	}
	if opts.Minter == nil {
		if opts.Minter, err = tokens.NewMinter(tokens.MinterOptions{Client: opts.Clientset, Audience: opts.Audience}); err != nil {
			return nil, fmt.Errorf("csi: %w", err)
		}
	}
	if opts.Authorizer == nil {
		if opts.Authorizer, err = tokens.NewAuthorizer(tokens.AuthorizerOptions{Client: opts.Clientset, RequireSAR: opts.RequireRBAC}); err != nil {
			return nil, fmt.Errorf("csi: %w", err)
		}
	}
	minTmpfs := MinTmpfsBytes(opts.RenderLimits)
	if opts.TmpfsBytes <= 0 {
		opts.TmpfsBytes = minTmpfs
	}
	if opts.TmpfsBytes < minTmpfs {
		return nil, fmt.Errorf("csi: Options.TmpfsBytes %d is too small: a tmpfs must hold two generations of the files, at least 2 × %d (the render limit) + %d bytes = %d", opts.TmpfsBytes, render.EffectiveLimits(opts.RenderLimits).MaxTotalBytes, TmpfsSlack, minTmpfs)
	}
	if opts.RefreshAfter <= 0 || opts.RefreshAfter >= 1 {
		opts.RefreshAfter = 0.8
	}
	if opts.MaxVolumes <= 0 {
		opts.MaxVolumes = 10000
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	volumes, err := lru.New[string, volumeState](opts.MaxVolumes)
	if err != nil {
		return nil, fmt.Errorf("csi: volume state: %w", err)
	}
	if opts.RegistrationDir != "" && !filepath.IsAbs(opts.RegistrationDir) {
		return nil, fmt.Errorf("csi: Options.RegistrationDir %q must be an absolute path", opts.RegistrationDir)
	}
	if opts.KubeletEndpoint == "" {
		opts.KubeletEndpoint = socket
	}
	return &Driver{
		opts:     opts,
		socket:   socket,
		resolver: &render.Resolver{Reader: opts.Reader, Authorizer: opts.Authorizer},
		volumes:  volumes,
		locks:    keyedMutex{held: map[string]chan struct{}{}},
		serving:  make(chan struct{}),
		registration: &registration{
			name: opts.DriverName, endpoint: opts.KubeletEndpoint, log: opts.Logger, registered: make(chan struct{}),
		},
	}, nil
}

func socketPath(endpoint string) (string, error) {
	p := endpoint
	if rest, ok := strings.CutPrefix(endpoint, "unix://"); ok {
		p = rest
	} else if strings.Contains(endpoint, "://") {
		return "", fmt.Errorf("csi: endpoint %q must be a unix socket (unix:///path or a path)", endpoint)
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("csi: endpoint %q must be an absolute socket path", endpoint)
	}
	return p, nil
}

// Start serves the Identity and Node services on the unix socket until ctx
// ends, then stops gracefully within Options.ShutdownTimeout.
func (d *Driver) Start(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(d.socket), 0o750); err != nil {
		return fmt.Errorf("csi: socket directory: %w", err)
	}
	// A socket left by a previous run would make Listen fail.
	if err := os.Remove(d.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("csi: remove the stale socket %s: %w", d.socket, err)
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "unix", d.socket)
	if err != nil {
		return fmt.Errorf("csi: listen on %s: %w", d.socket, err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(LoggingInterceptor(d.opts.Logger)))
	csipb.RegisterIdentityServer(srv, d)
	csipb.RegisterNodeServer(srv, d)
	d.opts.Logger.Info("serving CSI", "socket", d.socket, "driver", d.opts.DriverName, "node", d.opts.NodeID)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	close(d.serving)
	regCtx, stopReg := context.WithCancel(ctx)
	defer stopReg()
	var reg chan error // nil (never ready) without registration
	if d.opts.RegistrationDir != "" {
		// Registered once the driver serves, as the sidecar does.
		reg = make(chan error, 1)
		go func() { reg <- d.serveRegistration(regCtx) }()
	}
	var regErr error
	regDone := reg == nil
	select {
	case err := <-errc:
		stopReg()
		if !regDone {
			regErr = <-reg
		}
		return errors.Join(fmt.Errorf("csi: serve on %s: %w", d.socket, err), regErr)
	case regErr = <-reg: // only on an error, or once ctx ended
		regDone = true
		if regErr != nil {
			srv.Stop()
			if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				regErr = errors.Join(regErr, fmt.Errorf("csi: serve on %s: %w", d.socket, err))
			}
			_ = os.Remove(d.socket)
			return regErr
		}
	case <-ctx.Done():
	}
	// Deregister first: the kubelet stops sending calls.
	stopReg()
	if !regDone {
		regErr = <-reg
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(d.opts.ShutdownTimeout):
		srv.Stop()
		<-stopped
	}
	err = <-errc
	_ = os.Remove(d.socket)
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return errors.Join(fmt.Errorf("csi: serve on %s: %w", d.socket, err), regErr)
	}
	return regErr
}

// Serving is closed once Start listens on the socket: calls are accepted
// from then on.
func (d *Driver) Serving() <-chan struct{} { return d.serving }

// GetPluginInfo reports the driver's name and version.
func (d *Driver) GetPluginInfo(context.Context, *csipb.GetPluginInfoRequest) (*csipb.GetPluginInfoResponse, error) {
	return &csipb.GetPluginInfoResponse{Name: d.opts.DriverName, VendorVersion: version.Get().Version}, nil
}

// GetPluginCapabilities reports none: there is no Controller service.
func (d *Driver) GetPluginCapabilities(context.Context, *csipb.GetPluginCapabilitiesRequest) (*csipb.GetPluginCapabilitiesResponse, error) {
	return &csipb.GetPluginCapabilitiesResponse{}, nil
}

// Probe reports the driver ready.
func (d *Driver) Probe(context.Context, *csipb.ProbeRequest) (*csipb.ProbeResponse, error) {
	return &csipb.ProbeResponse{}, nil
}

// NodeGetCapabilities reports none: no staging, no stats, no expansion.
func (d *Driver) NodeGetCapabilities(context.Context, *csipb.NodeGetCapabilitiesRequest) (*csipb.NodeGetCapabilitiesResponse, error) {
	return &csipb.NodeGetCapabilitiesResponse{}, nil
}

// NodeGetInfo reports the node ID.
func (d *Driver) NodeGetInfo(context.Context, *csipb.NodeGetInfoRequest) (*csipb.NodeGetInfoResponse, error) {
	return &csipb.NodeGetInfoResponse{NodeId: d.opts.NodeID}, nil
}

// keyedMutex serialises the calls for one target path.
type keyedMutex struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

func (k *keyedMutex) lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		k.mu.Lock()
		ch, busy := k.held[key]
		if !busy {
			ch = make(chan struct{})
			k.held[key] = ch
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.held, key)
				k.mu.Unlock()
				close(ch)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for another operation on the volume: %w", ctx.Err())
		}
	}
}
