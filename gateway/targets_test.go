//go:build integration

package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestAClassAddressExtensionDefaultIsATargetOfConnectorsThatOmitIt: as in
// the original, an address extension the connector leaves to its class's
// default still gets the credential; without the default it is refused.
func TestAClassAddressExtensionDefaultIsATargetOfConnectorsThatOmitIt(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "ext-default")
	up := newRecorder(t)
	class := testbed.Class(t, "k8s")
	class.Name = "ext-default"
	api := connectorsv1alpha1.NewStringParamValue(up.URL)
	class.Spec.AddressExtensions = []connectorsv1alpha1.ParamSpec{{Name: "api", Default: &api}}
	if err := cp.Client.Create(t.Context(), class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), class) })

	c := connectorWith(t, ns, "gh", "https://primary.invalid", bearerSecret("upstream-token"), up.caPEM(), "http://"+e.addr)
	c.Spec.ConnectorClassName = class.Name
	if err := cp.Client.Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	setReady(t, c, metav1.ConditionTrue, "", "", "http://"+e.addr)
	token, _ := cp.PodToken(t, ns, "job", "default")
	get := func() (int, string) {
		cl := e.client(t, ns+"/gh", token)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	waitFor(t, "the default extension to be a target", func() bool {
		code, body := get()
		return code == http.StatusOK && body == "hello from upstream"
	})
	if auth := up.last().Get("Authorization"); auth != "Bearer upstream-token" {
		t.Errorf("upstream saw Authorization %q, want the connector's credential", auth)
	}

	class.Spec.AddressExtensions = nil
	if err := cp.Client.Update(t.Context(), class); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the target to be refused once the class drops the default", func() bool {
		code, body := get()
		return code == 0 && strings.Contains(body, "Forbidden")
	})
}

// TestAMissingCACertSecretAddsNothingAndTheOtherRootsStillServe: as for the
// reconciler (CACertReady SecretNotFound, Ready by the probes), a
// caCertSecretRef naming no Secret leaves the pool as it is: a target the
// install namespace's CA Secrets trust is served.
func TestAMissingCACertSecretAddsNothingAndTheOtherRootsStillServe(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "missing-ca")
	c := readyConnector(t, ns, "k8s-connector", apiserver(), cp.TargetToken(t, "reader"), "http://"+e.addr)
	c.Spec.CACertSecretRef = &connectorsv1alpha1.LocalSecretReference{Name: "not-there"}
	if err := cp.Client.Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	setReady(t, c, metav1.ConditionTrue, "", "", "http://"+e.addr)
	token, _ := cp.PodToken(t, ns, "k8s-access", "default")
	kc := e.kubeconfig(t, c, token)
	if out, errOut, err := kubectl(t, kc, nil, "", "get", "ns", "-o", "name"); err != nil || !strings.Contains(out, "namespace/"+ns) {
		t.Fatalf("kubectl through the gateway: %v\n%s\n%s", err, out, errOut)
	}
}
