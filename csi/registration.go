package csi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// registration serves the kubelet's plugin registration API on a socket in
// its plugins_registry directory, as the csi-node-driver-registrar sidecar
// does: the kubelet finds the socket, asks for the driver's name and
// endpoint (GetInfo) and reports whether it registered the driver.
type registration struct {
	registerapi.UnimplementedRegistrationServer
	name, endpoint string
	log            logr.Logger
	once           sync.Once
	registered     chan struct{} // closed once the kubelet registered the driver
}

// GetInfo tells the kubelet the driver's name and socket.
func (r *registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.name,
		Endpoint:          r.endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

// NotifyRegistrationStatus hears the kubelet's verdict.
func (r *registration) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if !st.PluginRegistered {
		r.log.Error(errors.New(st.Error), "the kubelet refused to register the driver", "driver", r.name, "endpoint", r.endpoint)
		return &registerapi.RegistrationStatusResponse{}, nil
	}
	r.log.Info("registered with the kubelet", "driver", r.name, "endpoint", r.endpoint)
	r.once.Do(func() { close(r.registered) })
	return &registerapi.RegistrationStatusResponse{}, nil
}

// RegistrationSocket is the socket the driver registers itself on, in the
// kubelet's plugin registration directory dir (the name the
// csi-node-driver-registrar uses).
func RegistrationSocket(dir, driverName string) string {
	return filepath.Join(dir, driverName+"-reg.sock")
}

// serveRegistration serves the registration API until ctx ends.
func (d *Driver) serveRegistration(ctx context.Context) error {
	socket := RegistrationSocket(d.opts.RegistrationDir, d.opts.DriverName)
	if err := os.MkdirAll(d.opts.RegistrationDir, 0o750); err != nil {
		return fmt.Errorf("csi: registration directory: %w", err)
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("csi: remove the stale registration socket %s: %w", socket, err)
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("csi: listen on %s: %w", socket, err)
	}
	srv := grpc.NewServer()
	registerapi.RegisterRegistrationServer(srv, d.registration)
	d.opts.Logger.Info("serving the kubelet's plugin registration", "socket", socket, "endpoint", d.registration.endpoint)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		_ = os.Remove(socket)
		return fmt.Errorf("csi: serve the registration on %s: %w", socket, err)
	case <-ctx.Done():
	}
	srv.Stop() // the kubelet holds no long calls: nothing to drain
	err = <-errc
	// Gone from plugins_registry, the driver is deregistered by the kubelet.
	_ = os.Remove(socket)
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("csi: serve the registration on %s: %w", socket, err)
	}
	return nil
}

// Registered is closed once the kubelet registered the driver (only when
// Options.RegistrationDir is set).
func (d *Driver) Registered() <-chan struct{} { return d.registration.registered }
