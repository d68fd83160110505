package devenv

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/yaml"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/chart"
)

// InstallOptions say what a local install writes.
type InstallOptions struct {
	// Config reaches the cluster: after installing CRDs, Install waits for
	// them to be Established and reads the class with a fresh client.
	Config *rest.Config
	// Namespace is the install namespace (connectors-system).
	Namespace string
	// CRDs installs the CRDs too (an existing cluster; envtest did it otherwise).
	CRDs bool
	// GatewayCACert and GatewayCAKey are stored in the Secret connectors-gateway-ca.
	GatewayCACert, GatewayCAKey []byte
	// APIServerCA is trusted for connectors through a labelled CA Secret.
	APIServerCA []byte
}

// Install creates or updates what a chart install would: the install
// namespace, the CRDs (when asked), the k8s ConnectorClass, the gateway CA
// Secret, the API server's CA as a trusted CA Secret and the gateway Service
// the class names (an alias of localhost: the gateway runs in this process).
func Install(ctx context.Context, c client.Client, o InstallOptions) error {
	if o.CRDs {
		crds, err := CRDs()
		if err != nil {
			return err
		}
		for _, crd := range crds {
			if err := upsert(ctx, c, crd, func(existing *apiextensionsv1.CustomResourceDefinition) { existing.Spec = crd.Spec }); err != nil {
				return err
			}
		}
		// A class applied before its CRD is Established fails with "no
		// matches for kind", and a client that looked the kind up before
		// keeps that answer: wait, then use a new client.
		if err := waitEstablished(ctx, c, crds); err != nil {
			return err
		}
		if c, err = client.New(o.Config, client.Options{Scheme: c.Scheme()}); err != nil {
			return fmt.Errorf("client: %w", err)
		}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", o.Namespace, err)
	}
	raw, err := chart.Class("k8s")
	if err != nil {
		return err
	}
	var class connectorsv1alpha1.ConnectorClass
	if err := yaml.UnmarshalStrict(raw, &class); err != nil {
		return fmt.Errorf("decode the k8s class: %w", err)
	}
	if err := upsert(ctx, c, &class, func(existing *connectorsv1alpha1.ConnectorClass) { existing.Spec = class.Spec }); err != nil {
		return err
	}
	gwCA := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: GatewayCASecret},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: o.GatewayCACert, corev1.TLSPrivateKeyKey: o.GatewayCAKey},
	}
	if err := upsert(ctx, c, gwCA, func(existing *corev1.Secret) { existing.Data = gwCA.Data }); err != nil {
		return err
	}
	apiCA := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: "local-apiserver-ca", Labels: map[string]string{connectorsv1alpha1.CACertLabel: "true"}},
		Data:       map[string][]byte{"ca.crt": o.APIServerCA},
	}
	if err := upsert(ctx, c, apiCA, func(existing *corev1.Secret) { existing.Data, existing.Labels = apiCA.Data, apiCA.Labels }); err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: "connectors-proxy-service"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}}},
	}
	return upsert(ctx, c, svc, func(existing *corev1.Service) { existing.Spec.ExternalName = "localhost" })
}

// upsert creates obj, or applies mutate to the existing object.
func upsert[T client.Object](ctx context.Context, c client.Client, obj T, mutate func(T)) error {
	existing := obj.DeepCopyObject().(T)
	_, err := controllerutil.CreateOrUpdate(ctx, c, existing, func() error {
		mutate(existing)
		return nil
	})
	if err != nil {
		return fmt.Errorf("install %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// waitEstablished waits (up to a minute) until every CRD is Established.
func waitEstablished(ctx context.Context, c client.Reader, crds []*apiextensionsv1.CustomResourceDefinition) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, want := range crds {
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := c.Get(ctx, client.ObjectKey{Name: want.Name}, &crd); err != nil {
				return false, nil //nolint:nilerr // not there yet: poll again
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("the CRD %s did not become Established: %w", want.Name, err)
		}
	}
	return nil
}
