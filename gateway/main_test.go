package gateway_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// cp is the package's control plane: the upstream of the connectors and the
// issuer of the pod tokens.
var cp *testbed.ControlPlane

func TestMain(m *testing.M) {
	var err error
	cp, err = testbed.NewControlPlane()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}
