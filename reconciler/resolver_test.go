//go:build integration

package reconciler_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// TestProxyURLsFollowTheClassResolverAndKeepTheProxyURIsPortAndPath: the
// proxy-resolver annotation path publishes
// <class proxy>/namespaces/<ns>/connectors/<name> (no per-connector
// Service); a class proxy URI keeps its port and path, in the class's
// status and in the host-style URL and Service of its connectors.
func TestProxyURLsFollowTheClassResolverAndKeepTheProxyURIsPortAndPath(t *testing.T) {
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	ns := namespace(t, "resolver")
	bearerSecret(t, ns, "k8s-secret", cp.TargetToken(t, "reader"))
	address := strings.TrimSuffix(cp.Config.Host, "/")
	gateway := "http://connectors-proxy-service." + opts.Namespace + ".svc.cluster.local"
	gatewayTLS := "https://connectors-proxy-service." + opts.Namespace + ".svc.cluster.local"
	// The shared gateway's Service, which a class proxy reference resolves to.
	if err := cp.Client.Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: opts.Namespace, Name: "connectors-proxy-service"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, class, resolver, uri string
		scheme                     string // connectors.io/proxy-scheme
		ref                        bool
		wantConnector, wantClass   string
		wantService                int32 // 0: no Service
	}{
		{name: "path resolver on the shared gateway", class: "path-gateway", resolver: "path", ref: true,
			wantConnector: gateway + "/namespaces/" + ns + "/connectors/path-gateway", wantClass: gateway},
		{name: "path resolver on a proxy URI with a port and a path", class: "path-uri", resolver: "path", uri: "http://proxy.example.com:3128/base",
			wantConnector: "http://proxy.example.com:3128/base/namespaces/" + ns + "/connectors/path-uri", wantClass: "http://proxy.example.com:3128/base"},
		{name: "host resolver on a proxy URI with a port", class: "host-uri", resolver: "host", uri: "http://proxy.example.com:3128/base",
			wantConnector: "http://c-host-uri." + ns + ".svc.cluster.local:3128", wantClass: "http://proxy.example.com:3128/base", wantService: 3128},
		{name: "host resolver on an https proxy URI keeps the scheme and its default port", class: "host-https", resolver: "host", uri: "https://plugin.example.com/v2",
			wantConnector: "https://c-host-https." + ns + ".svc.cluster.local", wantClass: "https://plugin.example.com/v2", wantService: 443},
		{name: "the https proxy scheme on the gateway reference: its TLS port 443", class: "ref-https", scheme: "https", ref: true,
			wantConnector: "https://c-ref-https." + ns + ".svc.cluster.local", wantClass: gatewayTLS, wantService: 443},
		{name: "the https proxy scheme with the path resolver", class: "path-https", scheme: "https", resolver: "path", ref: true,
			wantConnector: gatewayTLS + "/namespaces/" + ns + "/connectors/path-https", wantClass: gatewayTLS},
		{name: "a relative URI on the gateway reference", class: "ref-uri", ref: true, uri: "/v1",
			wantConnector: "http://c-ref-uri." + ns + ".svc.cluster.local", wantClass: gateway + "/v1", wantService: 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			class := testbed.Class(t, "k8s")
			class.Name = tc.class
			class.Annotations = map[string]string{}
			if tc.resolver != "" {
				class.Annotations[connectorsv1alpha1.ProxyResolverAnnotation] = tc.resolver
			}
			if tc.scheme != "" {
				class.Annotations[connectorsv1alpha1.ProxySchemeAnnotation] = tc.scheme
			}
			class.Spec.Proxy = &connectorsv1alpha1.ClassProxy{Destination: connectorsv1alpha1.Destination{URI: tc.uri}}
			if tc.ref {
				class.Spec.Proxy.Ref = &connectorsv1alpha1.KReference{Kind: "Service", Name: "connectors-proxy-service"}
			}
			if err := cp.Client.Create(t.Context(), class); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), class) })
			connector(t, ns, tc.class, tc.class, address, "k8s-secret")
			c := cp.WaitForConnector(t, ns, tc.class, "a proxy URL", func(c *connectorsv1alpha1.Connector) bool { return c.ProxyAddress() != "" })
			if got := c.ProxyAddress(); got != tc.wantConnector {
				t.Errorf("connector proxy URL %s, want %s", got, tc.wantConnector)
			}
			var svc corev1.Service
			err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "c-" + tc.class}, &svc)
			switch {
			case tc.wantService == 0 && !apierrors.IsNotFound(err):
				t.Errorf("Service c-%s: %v, want none for the path resolver", tc.class, err)
			case tc.wantService != 0 && (err != nil || svc.Spec.Ports[0].Port != tc.wantService):
				t.Errorf("Service c-%s: %v %+v, want port %d", tc.class, err, svc.Spec.Ports, tc.wantService)
			}
			waitForClassProxy(t, tc.class, tc.wantClass)
		})
	}

	t.Run("an unknown proxy scheme is a condition naming the annotation and its values", func(t *testing.T) {
		class := testbed.Class(t, "k8s")
		class.Name = "bad-scheme"
		class.Annotations = map[string]string{connectorsv1alpha1.ProxySchemeAnnotation: "ftp"}
		class.Spec.Proxy = &connectorsv1alpha1.ClassProxy{Destination: connectorsv1alpha1.Destination{Ref: &connectorsv1alpha1.KReference{Kind: "Service", Name: "connectors-proxy-service"}}}
		if err := cp.Client.Create(t.Context(), class); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(t.Context(), class) })
		connector(t, ns, "bad-scheme", "bad-scheme", address, "k8s-secret")
		c := cp.WaitForConnector(t, ns, "bad-scheme", "ProxyServiceReady False", func(c *connectorsv1alpha1.Connector) bool {
			cond := connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionProxyServiceReady)
			return cond != nil && cond.Status == metav1.ConditionFalse
		})
		cond := connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionProxyServiceReady)
		if !strings.Contains(cond.Message, connectorsv1alpha1.ProxySchemeAnnotation) || !strings.Contains(cond.Message, "use http or https") || c.ProxyAddress() != "" {
			t.Errorf("ProxyServiceReady %s: %s, proxy URL %q; want the annotation named, its values, and no URL", cond.Reason, cond.Message, c.ProxyAddress())
		}
	})

	t.Run("switching a class to the path resolver removes its connectors' Services", func(t *testing.T) {
		var class connectorsv1alpha1.ConnectorClass
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: "ref-uri"}, &class); err != nil {
			t.Fatal(err)
		}
		class.Annotations = map[string]string{connectorsv1alpha1.ProxyResolverAnnotation: connectorsv1alpha1.ProxyResolverPath}
		if err := cp.Client.Update(t.Context(), &class); err != nil {
			t.Fatal(err)
		}
		cp.WaitForConnector(t, ns, "ref-uri", "the path-style URL", func(c *connectorsv1alpha1.Connector) bool {
			return strings.HasSuffix(c.ProxyAddress(), "/v1/namespaces/"+ns+"/connectors/ref-uri")
		})
		deadline := time.Now().Add(30 * time.Second)
		for {
			var svc corev1.Service
			if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "c-ref-uri"}, &svc); apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the Service c-ref-uri is still there")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func waitForClassProxy(t *testing.T, name, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var class connectorsv1alpha1.ConnectorClass
		err := cp.Client.Get(t.Context(), client.ObjectKey{Name: name}, &class)
		if err == nil && class.Status.Proxy != nil && class.Status.Proxy.HTTPAddress != nil && class.Status.Proxy.HTTPAddress.URL == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("class %s: status.proxy %+v (%v), want url %s", name, class.Status.Proxy, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
