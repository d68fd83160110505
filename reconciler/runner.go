package reconciler

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// Result is the outcome of reconciling one connector.
type Result struct {
	// Namespace and Name of the connector.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Found says the connector exists after the reconcile.
	Found bool `json:"found"`
	// Ready is the connector's Ready condition after the reconcile; absent
	// when the connector no longer exists.
	Ready *connectorsv1alpha1.Condition `json:"ready,omitempty"`
	// Error says why the reconcile failed, if it did.
	Error string `json:"error,omitempty"`
}

// Runner reconciles synchronously, per trigger, without informers: the
// serverless mode (`connectors control`), where each CloudEvent or request
// runs the reconcilers with an uncached client.
type Runner struct {
	opts        Options
	connector   *ConnectorReconciler
	class       *ClassReconciler
	concurrency int
}

// NewRunner checks opts; concurrency bounds the connectors reconciled at
// once for one trigger (a Secret or class used by many), default 8.
func NewRunner(opts Options, concurrency int) (*Runner, error) {
	cr, err := NewConnectorReconciler(opts)
	if err != nil {
		return nil, err
	}
	cl, err := NewClassReconciler(opts)
	if err != nil {
		return nil, err
	}
	if concurrency <= 0 {
		concurrency = 8
	}
	return &Runner{opts: cr.opts, connector: cr, class: cl, concurrency: concurrency}, nil
}

// InstallNamespace is Options.Namespace, for Object.Scope.
func (r *Runner) InstallNamespace() string { return r.opts.Namespace }

// Run reconciles what a change of o concerns: the connector itself, the
// class and its connectors, or the connectors that use the Secret. Each
// connector's outcome is in its Result; the error is for a failure before
// any connector was reconciled (listing them, reconciling the class).
func (r *Runner) Run(ctx context.Context, o Object) ([]Result, error) {
	switch o.Kind {
	case KindConnector:
		return []Result{r.reconcileConnector(ctx, o.Namespace, o.Name)}, nil
	case KindConnectorClass:
		if _, err := r.class.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: o.Name}}); err != nil {
			return nil, err
		}
	}
	var list connectorsv1alpha1.ConnectorList
	var opts []client.ListOption
	if ns := o.Scope(r.opts.Namespace); ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	if err := r.opts.Client.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("list connectors: %w", err)
	}
	var mu sync.Mutex
	results := []Result{}
	g := new(errgroup.Group)
	g.SetLimit(r.concurrency)
	for i := range list.Items {
		c := &list.Items[i]
		if !o.concerns(c, r.opts.Namespace) {
			continue
		}
		g.Go(func() error {
			res := r.reconcileConnector(ctx, c.Namespace, c.Name)
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return results, nil
}

func (r *Runner) reconcileConnector(ctx context.Context, ns, name string) Result {
	res := Result{Namespace: ns, Name: name}
	key := client.ObjectKey{Namespace: ns, Name: name}
	if _, err := r.connector.Reconcile(ctx, reconcile.Request{NamespacedName: key}); err != nil {
		res.Error = err.Error()
		return res
	}
	var c connectorsv1alpha1.Connector
	if err := r.opts.Client.Get(ctx, key, &c); err != nil {
		if !apierrors.IsNotFound(err) {
			res.Error = err.Error()
		}
		return res
	}
	res.Found = true
	res.Ready = connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionReady)
	return res
}
