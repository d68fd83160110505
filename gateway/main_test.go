//go:build integration

package gateway_test

import (
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// cp is the package's control plane: the upstream of the connectors and the
// issuer of the pod tokens.
var cp *testbed.ControlPlane

func TestMain(m *testing.M) { testbed.Main(m, &cp) }
