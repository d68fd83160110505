package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// Labels of the proxy Services.
const (
	// ManagedByLabel marks the Services the reconciler owns.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "connectors"
	// ConnectorLabel names the connector a Service belongs to.
	ConnectorLabel = "connectors.alauda.io/connector"
)

// ServiceName is the name of a connector's proxy Service.
func ServiceName(connector string) string { return "c-" + connector }

// proxyHost is the host the connectors of a class reach its proxy at: the
// referenced Service's cluster DNS name, or the host of its URI.
func (r *ConnectorReconciler) proxyHost(class *connectorsv1alpha1.ConnectorClass) (string, error) {
	p := class.Spec.Proxy
	if p.Ref != nil && p.Ref.Name != "" {
		if p.Ref.Kind != "" && p.Ref.Kind != "Service" {
			return "", fmt.Errorf("spec.proxy.ref of ConnectorClass %s has kind %s; only Service is supported", class.Name, p.Ref.Kind)
		}
		ns := p.Ref.Namespace
		if ns == "" {
			ns = r.opts.Namespace
		}
		return fmt.Sprintf("%s.%s.svc.%s", p.Ref.Name, ns, r.opts.ClusterDomain), nil
	}
	u, err := url.Parse(p.URI)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("spec.proxy of ConnectorClass %s names neither a Service nor an absolute URI", class.Name)
	}
	return u.Hostname(), nil
}

// ensureProxyService returns ProxyServiceReady and the proxy status.
func (r *ConnectorReconciler) ensureProxyService(ctx context.Context, c *connectorsv1alpha1.Connector, class *connectorsv1alpha1.ConnectorClass) (connectorsv1alpha1.Condition, *connectorsv1alpha1.ProxyStatus, error) {
	const t = connectorsv1alpha1.ConditionProxyServiceReady
	if class.Spec.Proxy == nil {
		return cond(t, metav1.ConditionTrue, connectorsv1alpha1.ReasonNonProxy, "ConnectorClass %s declares no proxy", class.Name), nil, nil
	}
	fail := func(format string, args ...any) (connectorsv1alpha1.Condition, *connectorsv1alpha1.ProxyStatus, error) {
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonProxyServiceNotFound, format, args...), nil, nil
	}
	host, err := r.proxyHost(class)
	if err != nil {
		return fail("%s", err.Error())
	}
	name := ServiceName(c.Name)
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return fail("cannot name the proxy Service %s: %v (shorten the connector's name to 61 characters or less)", name, errs)
	}
	want := corev1.ServiceSpec{
		Type:         corev1.ServiceTypeExternalName,
		ExternalName: host,
		Ports:        []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)}},
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: name}}
	var existing corev1.Service
	err = r.opts.Client.Get(ctx, client.ObjectKeyFromObject(svc), &existing)
	switch {
	case apierrors.IsNotFound(err):
		svc.Labels = map[string]string{ManagedByLabel: ManagedByValue, ConnectorLabel: c.Name}
		svc.Spec = want
		if err := controllerutil.SetControllerReference(c, svc, r.opts.Client.Scheme()); err != nil {
			return connectorsv1alpha1.Condition{}, nil, fmt.Errorf("owner reference: %w", err)
		}
		if err := r.opts.Client.Create(ctx, svc); err != nil && !apierrors.IsAlreadyExists(err) {
			return fail("cannot create Service %s: %s", name, apiMessage(err))
		}
	case err != nil:
		return connectorsv1alpha1.Condition{}, nil, fmt.Errorf("get service %s/%s: %w", c.Namespace, name, err)
	default:
		if !metav1.IsControlledBy(&existing, c) {
			return fail("Service %s exists and does not belong to this connector: delete or rename it", name)
		}
		if !serviceMatches(&existing, want, c.Name) {
			updated := existing.DeepCopy()
			updated.Spec.Type, updated.Spec.ExternalName, updated.Spec.Ports = want.Type, want.ExternalName, want.Ports
			updated.Spec.Selector, updated.Spec.ClusterIP, updated.Spec.ClusterIPs = nil, "", nil
			if updated.Labels == nil {
				updated.Labels = map[string]string{}
			}
			updated.Labels[ManagedByLabel], updated.Labels[ConnectorLabel] = ManagedByValue, c.Name
			if err := r.opts.Client.Update(ctx, updated); err != nil {
				if apierrors.IsConflict(err) {
					return connectorsv1alpha1.Condition{}, nil, fmt.Errorf("repair service %s/%s: %w", c.Namespace, name, err)
				}
				return fail("cannot repair Service %s: %s", name, apiMessage(err))
			}
		}
	}
	addr := &connectorsv1alpha1.Addressable{URL: r.opts.proxyURL(c.Namespace, c.Name)}
	if r.opts.ProxyCA != nil {
		if pem, err := r.opts.ProxyCA(); err == nil && len(pem) > 0 {
			s := string(pem)
			addr.CACerts = &s
		}
	}
	return ok(t), &connectorsv1alpha1.ProxyStatus{HTTPAddress: addr}, nil
}

func serviceMatches(s *corev1.Service, want corev1.ServiceSpec, connector string) bool {
	return s.Spec.Type == want.Type && s.Spec.ExternalName == want.ExternalName &&
		equality.Semantic.DeepEqual(s.Spec.Ports, want.Ports) && len(s.Spec.Selector) == 0 &&
		s.Labels[ManagedByLabel] == ManagedByValue && s.Labels[ConnectorLabel] == connector
}

func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}
