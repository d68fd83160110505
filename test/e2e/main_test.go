//go:build e2e

package e2e

import (
	"testing"

	"github.com/connectors-io/connectors/internal/testbed"
)

// captured holds every log line of every component the package's tests
// run — `connectors dev`, the compose services, the controllers, the real
// node's processes and the chart's pods — (each test's capture is a child
// of it) and the tokens, Secret values and rendered kubeconfigs the tests
// see; TestMain checks it after all tests ran.
var captured = &testbed.LogCapture{}

// TestMain fails the run when a component logged a secret; the gateway's
// audit lines (JSON) have durationMs, so a full run logs it.
func TestMain(m *testing.M) { testbed.MainLogs(m, captured, `"durationMs":`) }
