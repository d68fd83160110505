//go:build integration

package gateway_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

// controlPlane is the test bed's control plane whose token helpers
// register every token they mint in captured.
type controlPlane struct{ *testbed.ControlPlane }

// cp is the package's control plane: the upstream of the connectors and the
// issuer of the pod tokens.
var cp = &controlPlane{}

// captured holds every log line of every gateway and token pipeline of the
// package's tests (each env's logs is a child of it) and the secrets the
// helpers created; TestMain checks it after all tests ran.
var captured = &testbed.LogCapture{}

// PodToken is testbed's PodToken, registering the token.
func (c *controlPlane) PodToken(tb testing.TB, namespace, pod, serviceAccount string) (tokens.Token, *corev1.Pod) {
	tb.Helper()
	tok, p := c.ControlPlane.PodToken(tb, namespace, pod, serviceAccount)
	captured.Secret(string(tok))
	return tok, p
}

// TargetToken is testbed's TargetToken, registering the token.
func (c *controlPlane) TargetToken(tb testing.TB, name string) string {
	tb.Helper()
	tok := c.ControlPlane.TargetToken(tb, name)
	captured.Secret(tok)
	return tok
}

// TestMain fails the run when a component logged a secret; every request's
// audit line has durationMs, so a full run logs it.
func TestMain(m *testing.M) { testbed.MainChecked(m, &cp.ControlPlane, captured, `"durationMs"=`) }
