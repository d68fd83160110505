//go:build integration

package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// TestAConnectorWhoseSpecChangedIsRefusedWithTheSharedMessage: the
// gateway refuses a connector the reconciler has not checked again with
// the message of connectorsv1alpha1.Connector.Usable, the one the CSI
// driver and the token API give.
func TestAConnectorWhoseSpecChangedIsRefusedWithTheSharedMessage(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "usable")
	up := newRecorder(t)
	c := recordingConnector(t, e, ns, "rec", up, "secret", true)
	c.Spec.AddressExtensions = []connectorsv1alpha1.AddressExtension{{Name: "alias", Value: "https://alias.example"}}
	if err := cp.Client.Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	var changed connectorsv1alpha1.Connector
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(c), &changed); err != nil {
		t.Fatal(err)
	}
	want := changed.Usable()
	if want == nil {
		t.Fatal("the changed connector is usable")
	}
	token, _ := cp.PodToken(t, ns, "job", "default")
	target := strings.TrimPrefix(up.URL, "https://")
	waitFor(t, "the change to reach the gateway", func() bool {
		resp, body := e.connect(t, target, ns+"/rec:"+string(token))
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, want.Error())
	})
}
