package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// FleetOptions configure the mixed scenario's fleet: many connectors, many
// pods (each with its own pod-bound token), and the tunnels between them.
type FleetOptions struct {
	// AdminKubeconfig is an administrator of the cluster the gateway serves
	// (connectors dev writes admin.kubeconfig). Required.
	AdminKubeconfig string
	// Namespace of the fleet; created, and deleted by Close. Default
	// loadtest-mixed.
	Namespace string
	// Connectors to the upstream. Default 1,000.
	Connectors int
	// Pods, each with a pod-bound proxy token. Default 100.
	Pods int
	// Clients are the tunnels the scenario spreads its requests over, each
	// a random pod token × connector pair. Default 200.
	Clients int
}

// Fleet is a set of connectors and pod tokens in one namespace.
type Fleet struct {
	c       client.Client
	ns      string
	clients []*Target
}

// SetupFleet creates the fleet against the upstream and waits until every
// connector is Ready; gateway is the mounted kubeconfig's target, whose
// gateway address and CA the fleet's tunnels use.
func SetupFleet(ctx context.Context, o FleetOptions, up *UpstreamInfo, gateway *Target) (*Fleet, error) {
	if o.AdminKubeconfig == "" {
		return nil, errors.New("the mixed scenario needs --admin-kubeconfig: it creates connectors and pods")
	}
	if o.Namespace == "" {
		o.Namespace = "loadtest-mixed"
	}
	if o.Connectors <= 0 {
		o.Connectors = 1000
	}
	if o.Pods <= 0 {
		o.Pods = 100
	}
	if o.Clients <= 0 {
		o.Clients = 200
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.AdminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("mixed: the admin kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("mixed: scheme: %w", err)
	}
	if err := connectorsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("mixed: scheme: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("mixed: client: %w", err)
	}
	f := &Fleet{c: c, ns: o.Namespace}
	if err := f.create(ctx, o, up); err != nil {
		return nil, err
	}
	tokens, err := f.podTokens(ctx, o.Pods)
	if err != nil {
		return nil, err
	}
	gw, err := gatewayProxy(gateway)
	if err != nil {
		return nil, err
	}
	for range o.Clients {
		name := fmt.Sprintf("up-%d", rand.IntN(o.Connectors))
		proxy := &url.URL{Scheme: "http", User: url.UserPassword(o.Namespace+"/"+name, tokens[rand.IntN(len(tokens))]), Host: gw}
		t := *gateway
		t.proxy = http.ProxyURL(proxy)
		f.clients = append(f.clients, &t)
	}
	return f, nil
}

func gatewayProxy(t *Target) (string, error) {
	u, err := url.Parse(t.BaseURL)
	if err != nil {
		return "", fmt.Errorf("mixed: %w", err)
	}
	pu, err := t.proxy(&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
	if err != nil || pu == nil {
		return "", errors.New("mixed: the gateway target has no proxy")
	}
	return pu.Host, nil
}

func (f *Fleet) create(ctx context.Context, o FleetOptions, up *UpstreamInfo) error {
	c, ns := f.c, f.ns
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("mixed: create namespace %s: %w", ns, err)
	}
	// A cluster without a controller manager (connectors dev) has no default ServiceAccount.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	if err := c.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("mixed: create ServiceAccount default: %w", err)
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "upstream-token"}, Type: connectorsv1alpha1.SecretTypeBearerToken,
			Data: map[string][]byte{connectorsv1alpha1.BearerTokenKey: []byte(up.Token)}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "upstream-ca"}, Data: map[string][]byte{"ca.crt": up.CA.CertPEM}},
	} {
		if err := c.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("mixed: create Secret %s: %w", s.Name, err)
		}
	}
	work := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				k := &connectorsv1alpha1.Connector{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("up-%d", i)},
					Spec: connectorsv1alpha1.ConnectorSpec{
						ConnectorClassName: "k8s", Address: up.URL(),
						CACertSecretRef: &connectorsv1alpha1.LocalSecretReference{Name: "upstream-ca"},
						Auth:            connectorsv1alpha1.ConnectorAuth{Name: "bearerTokenAuth", SecretRef: &connectorsv1alpha1.SecretReference{Name: "upstream-token"}},
					},
				}
				if err := c.Create(ctx, k); err != nil && !apierrors.IsAlreadyExists(err) {
					select {
					case errs <- fmt.Errorf("mixed: create connector %s: %w", k.Name, err):
					default:
					}
				}
			}
		})
	}
	for i := range o.Connectors {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var list connectorsv1alpha1.ConnectorList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("mixed: list connectors: %w", err)
		}
		ready := 0
		for i := range list.Items {
			if c := connectorsv1alpha1.FindCondition(list.Items[i].Status.Conditions, connectorsv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
				ready++
			}
		}
		if ready >= o.Connectors {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mixed: %d of %d connectors Ready after 5 min", ready, o.Connectors)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mixed: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// podTokens creates n pods and a pod-bound proxy token for each, as the
// kubelet requests them for the connectors-csi volume.
func (f *Fleet) podTokens(ctx context.Context, n int) ([]string, error) {
	var out []string
	for i := range n {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: fmt.Sprintf("client-%d", i)},
			Spec:       corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{Name: "main", Image: "loadtest"}}},
		}
		if err := f.c.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("mixed: create pod %s: %w", pod.Name, err)
		}
		if err := f.c.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return nil, fmt.Errorf("mixed: read pod %s: %w", pod.Name, err)
		}
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences:      []string{"connectors-proxy"},
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "default"}}
		if err := f.c.SubResource("token").Create(ctx, sa, tr); err != nil {
			return nil, fmt.Errorf("mixed: a token for pod %s: %w", pod.Name, err)
		}
		out = append(out, tr.Status.Token)
	}
	return out, nil
}

// Close deletes the fleet's namespace.
func (f *Fleet) Close(ctx context.Context) error {
	err := f.c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("mixed: delete namespace %s: %w", f.ns, err)
	}
	return nil
}

// mixedRequest is one request of the verb mix: 60 % a namespace's pod list,
// 25 % one pod, 10 % a create, 5 % a delete (what controllers and kubectl
// send, roughly).
func mixedRequest(ctx context.Context, rt http.RoundTripper, base string) error {
	method, path, body := http.MethodGet, "/api/v1/namespaces/default/pods", ""
	switch n := rand.IntN(100); {
	case n < 60:
	case n < 85:
		path += "/loadtest-0"
	case n < 95:
		method, body = http.MethodPost, `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"loadtest-new"}}`
	default:
		method, path = http.MethodDelete, path+"/loadtest-0"
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return statusError(resp.StatusCode)
	}
	return err
}
