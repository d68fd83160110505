package reconciler

import (
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// EventRecorder records events about objects; client-go's
// record.EventRecorder satisfies it.
type EventRecorder interface {
	// Eventf records an event of type Normal or Warning.
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// DefaultProxyURLTemplate is the default of Options.ProxyURLTemplate.
const DefaultProxyURLTemplate = "http://c-{name}.{namespace}.svc.{clusterDomain}"

// Options configure the reconcilers.
type Options struct {
	// Client reads Connectors, ConnectorClasses and Services and writes
	// statuses and Services: the manager's cached client in watch mode, an
	// uncached one in serverless mode. Required.
	Client client.Client
	// APIReader reads Secrets and the class's proxy Service straight from
	// the API server; in watch mode pass the manager's API reader so that
	// Secrets are never cached. Default: Client.
	APIReader client.Reader
	// Recorder records events. Required.
	Recorder EventRecorder
	// Namespace is the install namespace, where CA Secrets labelled
	// connectors.cpaas.io/ca-cert=true are trusted for every connector.
	Namespace string
	// ClusterDomain is the cluster's DNS domain. Default cluster.local.
	ClusterDomain string
	// ProxyURLTemplate gives status.proxy.httpAddress.url, with {name},
	// {namespace} and {clusterDomain} replaced. Default
	// http://c-{name}.{namespace}.svc.{clusterDomain}; a local run sets the
	// gateway's own address.
	ProxyURLTemplate string
	// ProxyCA returns the gateway CA (PEM), published as
	// status.proxy.httpAddress.CACerts of connectors; nil, or an error,
	// leaves CACerts out.
	ProxyCA func() ([]byte, error)
	// ProbeTimeout bounds each probe. Default 10s.
	ProbeTimeout time.Duration
	// TemplateTimeout bounds the execution of each probe template (a path
	// or a header value). Default 1s.
	TemplateTimeout time.Duration
	// Resync is how often a connector is probed again. Default 5m, with
	// ±10 % jitter.
	Resync time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger is the fallback logger when the context carries none.
	Logger logr.Logger
}

func (o *Options) defaults() error {
	if o.Client == nil || o.Recorder == nil {
		return errors.New("reconciler: Options.Client and Options.Recorder are required")
	}
	if o.APIReader == nil {
		o.APIReader = o.Client
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.ProxyURLTemplate == "" {
		o.ProxyURLTemplate = DefaultProxyURLTemplate
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 10 * time.Second
	}
	if o.TemplateTimeout <= 0 {
		o.TemplateTimeout = time.Second
	}
	if o.Resync <= 0 {
		o.Resync = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// proxyURL renders the proxy URL template for a connector.
func (o *Options) proxyURL(namespace, name string) string {
	return strings.NewReplacer("{name}", name, "{namespace}", namespace, "{clusterDomain}", o.ClusterDomain).Replace(o.ProxyURLTemplate)
}

// jittered returns d ± 10 %.
func jittered(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}
