//go:build integration

package control_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/reconciler"
)

// watchMode runs the controllers of watch mode with a trigger queue until
// the test ends and serves the control API on that queue.
func watchMode(t *testing.T) string {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: reconciler.CacheOptions(), Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := reconcilerOptions(t)
	opts.Client, opts.APIReader = mgr.GetClient(), mgr.GetAPIReader()
	queue := reconciler.NewQueue(0)
	ctx, cancel := context.WithCancel(context.Background())
	if err := reconciler.SetupWithManager(ctx, mgr, opts, reconciler.WatchOptions{Triggers: queue}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return serve(t, control.Options{Queue: queue}, nil).URL
}

func TestInWatchModeATriggerIsQueuedForTheController(t *testing.T) {
	cp.InstallK8sClass(t)
	ns := namespace(t, "watch")
	bearerSecret(t, ns, "k8s-secret", "not-a-valid-token")
	connector(t, ns, "k8s-connector", "k8s-secret")
	url := watchMode(t)
	caller := triggerCaller(t, "source", true)

	t.Run("a trigger about a connector answers 202 with the connector queued", func(t *testing.T) {
		code, body := call(t, http.MethodPost, url+"/v1/reconcile/"+ns+"/k8s-connector", caller, nil, "")
		var resp control.EventResponse
		if code != http.StatusAccepted || json.Unmarshal(body, &resp) != nil || len(resp.Queued) != 1 || resp.Queued[0] != (connectorsv1alpha1.ConnectorRef{Namespace: ns, Name: "k8s-connector"}) {
			t.Fatalf("got %d %s, want 202 with the connector queued", code, body)
		}
		cp.WaitForConnector(t, ns, "k8s-connector", "a Ready condition", func(c *connectorsv1alpha1.Connector) bool {
			return connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionReady) != nil
		})
	})
	t.Run("a trigger about a Secret queues the connectors that use it", func(t *testing.T) {
		event := `{"apiVersion":"v1","kind":"Secret","namespace":"` + ns + `","name":"k8s-secret"}`
		headers := map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "w1", "ce-source": "s", "ce-type": "t"}
		code, body := call(t, http.MethodPost, url+"/", caller, headers, event)
		var resp control.EventResponse
		if code != http.StatusAccepted || json.Unmarshal(body, &resp) != nil || len(resp.Queued) != 1 || resp.Queued[0].Name != "k8s-connector" {
			t.Fatalf("got %d %s, want 202 with the connector queued", code, body)
		}
	})
	t.Run("a trigger about a missing connector is 404", func(t *testing.T) {
		code, body := call(t, http.MethodPost, url+"/v1/reconcile/"+ns+"/missing", caller, nil, "")
		if code != http.StatusNotFound {
			t.Fatalf("got %d %s, want 404", code, body)
		}
	})
}
