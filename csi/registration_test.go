//go:build integration

package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/connectors-io/connectors/csi"
)

// TestTheDriverRegistersItselfAsTheRegistrarSidecarDoes plays the kubelet's
// side of plugin registration: it finds the socket in plugins_registry,
// asks for the driver's info and reports the registration.
func TestTheDriverRegistersItselfAsTheRegistrarSidecarDoes(t *testing.T) {
	dir, err := os.MkdirTemp("", "reg") // unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	registry := filepath.Join(dir, "plugins_registry")
	socket := filepath.Join(dir, "plugins", "connectors-csi", "csi.sock")
	d, err := csi.New(csi.Options{
		Endpoint: "unix://" + socket, NodeID: "node-1", Reader: cp.Client, Clientset: cp.Clientset, ProxyCACert: gatewayCA,
		RegistrationDir: registry, KubeletEndpoint: "/var/lib/kubelet/plugins/connectors-csi/csi.sock", Logger: logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Start(ctx) }()
	conn := dialWhenThere(t, csi.RegistrationSocket(registry, "connectors-csi"))
	kubelet := registerapi.NewRegistrationClient(conn)
	info, err := kubelet.GetInfo(t.Context(), &registerapi.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != registerapi.CSIPlugin || info.Name != "connectors-csi" || info.Endpoint != "/var/lib/kubelet/plugins/connectors-csi/csi.sock" || len(info.SupportedVersions) == 0 {
		t.Errorf("GetInfo = %+v, want the CSI plugin connectors-csi at the kubelet's path of its socket", info)
	}
	if _, err := kubelet.NotifyRegistrationStatus(t.Context(), &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Registered():
	case <-time.After(10 * time.Second):
		t.Fatal("Registered() not closed after the kubelet's registration")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Start returned %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(registry, "*")); len(m) != 0 {
		t.Errorf("left in plugins_registry after the stop: %v", m)
	}
}

func dialWhenThere(t *testing.T, socket string) *grpc.ClientConn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			_, err = registerapi.NewRegistrationClient(conn).GetInfo(ctx, &registerapi.InfoRequest{})
			cancel()
			if err == nil {
				t.Cleanup(func() { _ = conn.Close() })
				return conn
			}
			_ = conn.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no registration socket at %s: %v", socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
