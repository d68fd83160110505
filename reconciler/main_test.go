package reconciler_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// cp is the package's control plane. Tests run one after another: each
// starts its own controller, which reconciles every connector it sees.
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
