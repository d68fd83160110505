//go:build integration

package reconciler_test

import (
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// cp is the package's control plane. Tests run one after another: each
// starts its own controller, which reconciles every connector it sees.
var cp *testbed.ControlPlane

func TestMain(m *testing.M) { testbed.Main(m, &cp) }
