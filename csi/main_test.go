package csi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/yaml"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/chart"
	"github.com/connectors-io/connectors/internal/testbed"
)

// cp is the package's control plane; every test works in namespaces of its
// own.
var cp *testbed.ControlPlane

// gatewayCA is the gateway CA certificate (PEM) given to every driver.
var gatewayCA []byte

// captured holds every log line of every driver and API of the package's
// tests; TestMain checks it for secrets after all tests ran.
var captured = &logCapture{}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if gatewayCA, err = selfSignedCA(); err != nil {
		return 1, err
	}
	if cp, err = testbed.NewControlPlane(); err != nil {
		return 1, err
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if err := installK8sClass(); err != nil {
		return 1, err
	}
	code := m.Run()
	if code == 0 {
		if err := captured.check(); err != nil {
			return 1, err
		}
	}
	return code, nil
}

func installK8sClass() error {
	raw, err := chart.Class("k8s")
	if err != nil {
		return err
	}
	var class connectorsv1alpha1.ConnectorClass
	if err := yaml.UnmarshalStrict(raw, &class); err != nil {
		return err
	}
	if err := cp.Client.Create(context.Background(), &class); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("install the k8s class: %w", err)
	}
	return nil
}

func selfSignedCA() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "connectors gateway test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// logCapture records log lines and the secrets that must never appear in
// them.
type logCapture struct {
	mu      sync.Mutex
	lines   bytes.Buffer
	secrets []string
}

// logger returns a logger (all verbosities) writing into the capture.
func (c *logCapture) logger(name string) logr.Logger {
	return funcr.New(func(prefix, args string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		fmt.Fprintf(&c.lines, "%s %s\n", prefix, args)
	}, funcr.Options{Verbosity: 10}).WithName(name)
}

// secret registers a value that no log line may contain.
func (c *logCapture) secret(s string) {
	s = strings.TrimSpace(s)
	if len(s) < 8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets = append(c.secrets, s)
}

// check fails when a secret was logged; it names the secret by number
// only, so that its failure message does not leak it either.
func (c *logCapture) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := c.lines.String()
	full := flag.Lookup("test.run") == nil || flag.Lookup("test.run").Value.String() == ""
	if full && (!strings.Contains(text, "CSI call failed") || !strings.Contains(text, "configuration request refused")) {
		return fmt.Errorf("log capture: the drivers' logs were not captured (%d bytes)", len(text))
	}
	if full && len(c.secrets) < 5 {
		return fmt.Errorf("log capture: only %d secrets were registered; the tests did not run", len(c.secrets))
	}
	for i, s := range c.secrets {
		if strings.Contains(text, s) {
			return fmt.Errorf("log capture: secret #%d (a token or rendered content) appears in the logs", i)
		}
	}
	return nil
}
