package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

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

// classProxyURL is the URL of a class's proxy, as Knative resolves a
// Destination: the referenced Service's cluster DNS name (http, port 80;
// https, port 443, with the annotation connectors.io/proxy-scheme: https)
// with a relative spec.proxy.uri applied, or the absolute spec.proxy.uri
// with its port and path kept.
func (r *ConnectorReconciler) classProxyURL(class *connectorsv1alpha1.ConnectorClass) (*url.URL, error) {
	p := class.Spec.Proxy
	var uri *url.URL
	if p.URI != "" {
		var err error
		if uri, err = url.Parse(p.URI); err != nil {
			return nil, fmt.Errorf("spec.proxy.uri of ConnectorClass %s is not a URL: %w", class.Name, err)
		}
	}
	if p.Ref != nil && p.Ref.Name != "" {
		if p.Ref.Kind != "" && p.Ref.Kind != "Service" {
			return nil, fmt.Errorf("spec.proxy.ref of ConnectorClass %s has kind %s; only Service is supported", class.Name, p.Ref.Kind)
		}
		ns := p.Ref.Namespace
		if ns == "" {
			ns = r.opts.Namespace
		}
		scheme := class.Annotations[connectorsv1alpha1.ProxySchemeAnnotation]
		switch scheme {
		case "":
			scheme = "http"
		case "http", "https":
		default:
			return nil, fmt.Errorf("ConnectorClass %s has %s: %q; use http or https", class.Name, connectorsv1alpha1.ProxySchemeAnnotation, scheme)
		}
		base := &url.URL{Scheme: scheme, Host: fmt.Sprintf("%s.%s.svc.%s", p.Ref.Name, ns, r.opts.ClusterDomain)}
		if uri == nil {
			return base, nil
		}
		if uri.IsAbs() {
			return nil, fmt.Errorf("spec.proxy of ConnectorClass %s has a ref and an absolute uri: with a ref, the uri is a path", class.Name)
		}
		return base.ResolveReference(uri), nil
	}
	if uri == nil || !uri.IsAbs() || uri.Hostname() == "" {
		return nil, fmt.Errorf("spec.proxy of ConnectorClass %s names neither a Service nor an absolute URI", class.Name)
	}
	return uri, nil
}

// connectorProxyURL is a connector's status.proxy.httpAddress.url under
// the class's resolver (annotation connectors.cpaas.io/proxy-resolver):
// host (the default) gives the connector's own host name, the Service
// c-<name> aliasing the class proxy (with the class proxy's port when it is
// not 80); path gives <class proxy URL>/namespaces/<ns>/connectors/<name>.
func (r *ConnectorReconciler) connectorProxyURL(c *connectorsv1alpha1.Connector, class *connectorsv1alpha1.ConnectorClass, base *url.URL) (string, error) {
	switch resolver := class.Annotations[connectorsv1alpha1.ProxyResolverAnnotation]; resolver {
	case "", connectorsv1alpha1.ProxyResolverHost:
		own := r.opts.proxyURL(c.Namespace, c.Name)
		u, err := url.Parse(own)
		if err != nil || u.Port() != "" || u.Scheme != "http" {
			return own, nil // a template with its own port or scheme (a local run) wins
		}
		// The connector's host name stands for the class proxy: its scheme
		// and, when not the scheme's default, its port.
		u.Scheme = base.Scheme
		if p := strconv.Itoa(int(servicePort(base))); p != defaultPort(base.Scheme) {
			u.Host += ":" + p
		}
		return u.String(), nil
	case connectorsv1alpha1.ProxyResolverPath:
		return strings.TrimSuffix(base.String(), "/") + "/namespaces/" + c.Namespace + "/connectors/" + c.Name, nil
	default:
		return "", fmt.Errorf("ConnectorClass %s has %s: %q; use host or path", class.Name, connectorsv1alpha1.ProxyResolverAnnotation, resolver)
	}
}

// servicePort is the port of the c-<name> Service: the class proxy's.
func servicePort(base *url.URL) int32 {
	if p, err := strconv.ParseInt(base.Port(), 10, 32); err == nil && p > 0 {
		return int32(p)
	}
	p, _ := strconv.ParseInt(defaultPort(base.Scheme), 10, 32)
	return int32(p)
}

// defaultPort is the port a URL of scheme means without one.
func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
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
	base, err := r.classProxyURL(class)
	if err != nil {
		return fail("%s", err.Error())
	}
	proxyURL, err := r.connectorProxyURL(c, class, base)
	if err != nil {
		return fail("%s", err.Error())
	}
	if class.Annotations[connectorsv1alpha1.ProxyResolverAnnotation] == connectorsv1alpha1.ProxyResolverPath {
		// The class proxy tells connectors apart by the path: no Service,
		// and the connector's own one of an earlier host resolver goes.
		var old corev1.Service
		err := r.opts.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ServiceName(c.Name)}, &old)
		switch {
		case err == nil && metav1.IsControlledBy(&old, c):
			if err := r.opts.Client.Delete(ctx, &old); err != nil && !apierrors.IsNotFound(err) {
				return fail("cannot delete Service %s, which the path resolver does not use: %s", old.Name, apiMessage(err))
			}
		case err != nil && !apierrors.IsNotFound(err):
			return connectorsv1alpha1.Condition{}, nil, fmt.Errorf("get service %s/%s: %w", c.Namespace, ServiceName(c.Name), err)
		}
		return ok(t), r.proxyStatus(proxyURL), nil
	}
	host, port := base.Hostname(), servicePort(base)
	name := ServiceName(c.Name)
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return fail("cannot name the proxy Service %s: %v (shorten the connector's name to 61 characters or less)", name, errs)
	}
	want := corev1.ServiceSpec{
		Type:         corev1.ServiceTypeExternalName,
		ExternalName: host,
		Ports:        []corev1.ServicePort{{Name: base.Scheme, Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port)}},
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
	return ok(t), r.proxyStatus(proxyURL), nil
}

// proxyStatus is status.proxy of a connector at url, with the gateway CA.
func (r *ConnectorReconciler) proxyStatus(url string) *connectorsv1alpha1.ProxyStatus {
	addr := &connectorsv1alpha1.Addressable{URL: url}
	if r.opts.ProxyCA != nil {
		if pem, err := r.opts.ProxyCA(); err == nil && len(pem) > 0 {
			s := string(pem)
			addr.CACerts = &s
		}
	}
	return &connectorsv1alpha1.ProxyStatus{HTTPAddress: addr}
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
