package reconciler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// Field indexes of Connectors in the manager's cache.
const (
	indexClass   = "spec.connectorClassName"
	indexSecrets = "connectors.alauda.io/secrets"
)

// CacheOptions limit the manager's cache to what the reconciler needs: only
// the Services it manages (Secrets are read directly, and watched by
// metadata only). Merge them into manager.Options.Cache.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Service{}: {Label: labels.SelectorFromSet(labels.Set{ManagedByLabel: ManagedByValue})},
	}}
}

// WatchOptions tune watch mode.
type WatchOptions struct {
	// Concurrency is how many connectors are reconciled (probed) at once.
	// Default 16: a slow target never holds up the others.
	Concurrency int
	// Triggers, when set, feeds the triggers of the control API into the
	// controllers (see Queue).
	Triggers *Queue
}

// SetupWithManager registers the Connector and ConnectorClass reconcilers
// with mgr. Pass opts.APIReader = mgr.GetAPIReader() so Secrets are not
// cached.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options, watch WatchOptions) error {
	cr, err := NewConnectorReconciler(opts)
	if err != nil {
		return err
	}
	cl, err := NewClassReconciler(opts)
	if err != nil {
		return err
	}
	if watch.Concurrency <= 0 {
		watch.Concurrency = 16
	}
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &connectorsv1alpha1.Connector{}, indexClass, func(o client.Object) []string {
		return []string{o.(*connectorsv1alpha1.Connector).Spec.ConnectorClassName}
	}); err != nil {
		return fmt.Errorf("index connectors by class: %w", err)
	}
	if err := idx.IndexField(ctx, &connectorsv1alpha1.Connector{}, indexSecrets, func(o client.Object) []string {
		return o.(*connectorsv1alpha1.Connector).ReferencedSecrets()
	}); err != nil {
		return fmt.Errorf("index connectors by secret: %w", err)
	}
	c := mgr.GetClient()
	byClass := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return connectorsMatching(ctx, c, client.MatchingFields{indexClass: o.GetName()})
	})
	bySecret := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		if o.GetNamespace() == opts.Namespace && o.GetLabels()[connectorsv1alpha1.CACertLabel] == "true" {
			return connectorsMatching(ctx, c) // a trusted CA changed: every connector
		}
		return connectorsMatching(ctx, c, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexSecrets: o.GetName()})
	})
	secretMeta := &metav1.PartialObjectMetadata{}
	secretMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	connectors := ctrl.NewControllerManagedBy(mgr).
		Named("connector").
		For(&connectorsv1alpha1.Connector{}).
		Owns(&corev1.Service{}).
		Watches(&connectorsv1alpha1.ConnectorClass{}, byClass).
		WatchesMetadata(secretMeta, bySecret, builder.OnlyMetadata).
		WithOptions(controller.Options{MaxConcurrentReconciles: watch.Concurrency})
	classes := ctrl.NewControllerManagedBy(mgr).
		Named("connectorclass").
		For(&connectorsv1alpha1.ConnectorClass{})
	if q := watch.Triggers; q != nil {
		q.reader, q.namespace = c, opts.Namespace
		connectors = connectors.WatchesRawSource(q.connectorSource())
		classes = classes.WatchesRawSource(q.classSource())
	}
	if err := connectors.Complete(cr); err != nil {
		return fmt.Errorf("set up the connector controller: %w", err)
	}
	if err := classes.Complete(cl); err != nil {
		return fmt.Errorf("set up the connectorclass controller: %w", err)
	}
	return nil
}

func connectorsMatching(ctx context.Context, c client.Reader, opts ...client.ListOption) []reconcile.Request {
	var list connectorsv1alpha1.ConnectorList
	if err := c.List(ctx, &list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list connectors to requeue")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, item := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&item)})
	}
	return reqs
}
