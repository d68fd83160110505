//go:build integration

package tokens_test

import (
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// cp is the package's control plane: starting one takes seconds, and every
// test works in namespaces of its own.
var cp *testbed.ControlPlane

func TestMain(m *testing.M) { testbed.Main(m, &cp) }
