package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// ClassReconciler reconciles the status of a ConnectorClass: ProxyReady
// (and the resolved proxy address), APIReady and Ready.
type ClassReconciler struct {
	// connector provides the options and the proxy resolution.
	connector *ConnectorReconciler
}

var _ reconcile.Reconciler = (*ClassReconciler)(nil)

// NewClassReconciler checks opts and fills defaults.
func NewClassReconciler(opts Options) (*ClassReconciler, error) {
	c, err := NewConnectorReconciler(opts)
	if err != nil {
		return nil, err
	}
	return &ClassReconciler{connector: c}, nil
}

// classConditionTypes are the conditions whose aggregate is a class's Ready.
func classConditionTypes() []string {
	return []string{connectorsv1alpha1.ConditionProxyReady, connectorsv1alpha1.ConditionAPIReady}
}

// Reconcile resolves the class's proxy and writes its status.
func (r *ClassReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	opts := r.connector.opts
	var class connectorsv1alpha1.ConnectorClass
	if err := opts.Client.Get(ctx, client.ObjectKey{Name: req.Name}, &class); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("get connectorclass %s: %w", req.Name, err)
	}
	status := class.Status.DeepCopy()
	now := metav1.NewTime(opts.Now())
	proxyCond, proxy, err := r.proxy(ctx, &class)
	if err != nil {
		return reconcile.Result{}, err
	}
	connectorsv1alpha1.SetCondition(&status.Conditions, proxyCond, now)
	status.Proxy = proxy
	apiCond := cond(connectorsv1alpha1.ConditionAPIReady, metav1.ConditionTrue, connectorsv1alpha1.ReasonNonAPI, "ConnectorClass %s declares no API", class.Name)
	if class.Spec.API != nil {
		apiCond = cond(connectorsv1alpha1.ConditionAPIReady, metav1.ConditionUnknown, "NotSupported", "ConnectorClass APIs are not served by this installation")
	}
	connectorsv1alpha1.SetCondition(&status.Conditions, apiCond, now)
	connectorsv1alpha1.SetCondition(&status.Conditions, connectorsv1alpha1.AggregateReady(status.Conditions, classConditionTypes()), now)
	status.ObservedGeneration = class.Generation
	if equality.Semantic.DeepEqual(&class.Status, status) {
		return reconcile.Result{RequeueAfter: jittered(opts.Resync)}, nil
	}
	class.Status = *status
	if err := opts.Client.Status().Update(ctx, &class); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: time.Second}, nil // another writer won: read again soon
		}
		return reconcile.Result{}, fmt.Errorf("update status of connectorclass %s: %w", class.Name, err)
	}
	return reconcile.Result{RequeueAfter: jittered(opts.Resync)}, nil
}

func (r *ClassReconciler) proxy(ctx context.Context, class *connectorsv1alpha1.ConnectorClass) (connectorsv1alpha1.Condition, *connectorsv1alpha1.ProxyStatus, error) {
	const t = connectorsv1alpha1.ConditionProxyReady
	if class.Spec.Proxy == nil {
		return cond(t, metav1.ConditionTrue, connectorsv1alpha1.ReasonNonProxy, "ConnectorClass %s declares no proxy", class.Name), nil, nil
	}
	base, err := r.connector.classProxyURL(class)
	if err != nil {
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonProxyServiceNotFound, "%s", err.Error()), nil, nil
	}
	if ref := class.Spec.Proxy.Ref; ref != nil && ref.Name != "" {
		ns := ref.Namespace
		if ns == "" {
			ns = r.connector.opts.Namespace
		}
		var svc corev1.Service
		if err := r.connector.opts.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &svc); err != nil {
			if !apierrors.IsNotFound(err) {
				return connectorsv1alpha1.Condition{}, nil, fmt.Errorf("get service %s/%s: %w", ns, ref.Name, err)
			}
			return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonProxyServiceNotFound,
				"the proxy Service %s/%s does not exist: is the gateway installed?", ns, ref.Name), nil, nil
		}
	}
	if resolver := class.Annotations[connectorsv1alpha1.ProxyResolverAnnotation]; resolver != "" && resolver != connectorsv1alpha1.ProxyResolverHost && resolver != connectorsv1alpha1.ProxyResolverPath {
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonProxyServiceNotFound, "%s: %q; use host or path", connectorsv1alpha1.ProxyResolverAnnotation, resolver), nil, nil
	}
	return ok(t), &connectorsv1alpha1.ProxyStatus{HTTPAddress: &connectorsv1alpha1.Addressable{URL: strings.TrimSuffix(base.String(), "/")}}, nil
}
