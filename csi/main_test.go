//go:build integration

package csi_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// cp is the package's control plane; every test works in namespaces of its
// own.
var cp *testbed.ControlPlane

// gatewayCA is the gateway CA certificate (PEM) given to every driver.
var gatewayCA []byte

// captured holds every log line of every driver of the package's tests;
// TestMain checks it for secrets after all tests ran.
var captured = &testbed.LogCapture{}

func TestMain(m *testing.M) {
	var err error
	if gatewayCA, err = testbed.SelfSignedCA("connectors gateway test CA"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testbed.MainChecked(m, &cp, captured, "CSI call failed")
}
