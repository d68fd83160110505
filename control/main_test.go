//go:build integration

package control_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// cp is the package's control plane; every test works in namespaces of its
// own.
var cp *testbed.ControlPlane

// gatewayCA is the gateway CA certificate (PEM) of every server.
var gatewayCA []byte

// captured holds every log line of every server of the package's tests;
// TestMain checks it for secrets after all tests ran.
var captured = &testbed.LogCapture{}

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
	if gatewayCA, err = testbed.SelfSignedCA("connectors gateway test CA"); err != nil {
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
	code := m.Run()
	if code != 0 {
		return code, nil
	}
	if err := captured.Check(); err != nil {
		return 1, err
	}
	// The check must have had something to look at: a full run logs
	// refusals and registers the tokens it used.
	full := flag.Lookup("test.run") == nil || flag.Lookup("test.run").Value.String() == ""
	if full && (captured.Secrets() < 5 || !strings.Contains(captured.Text(), "request refused")) {
		return 1, fmt.Errorf("log capture: the servers' logs were not captured (%d secrets, %d bytes)", captured.Secrets(), len(captured.Text()))
	}
	return 0, nil
}
