package main

import (
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/connectors-io/connectors/reconciler"
)

// reconcilerOptions are the reconciler options both modes share.
type reconcilerOptions struct {
	namespace       string
	clusterDomain   string
	proxyTemplate   string
	probeTimeout    time.Duration
	templateTimeout time.Duration
	resync          time.Duration
}

func (o *reconcilerOptions) AddFlags(fs *pflag.FlagSet, env environment) {
	fs.StringVar(&o.namespace, "namespace", or(env.podNamespace, "connectors-system"), "install namespace, whose CA Secrets labelled connectors.cpaas.io/ca-cert=true are trusted ($POD_NAMESPACE when set)")
	fs.StringVar(&o.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	fs.StringVar(&o.proxyTemplate, "proxy-url-template", reconciler.DefaultProxyURLTemplate, "status.proxy.httpAddress.url of connectors; {name}, {namespace} and {clusterDomain} are replaced")
	fs.DurationVar(&o.probeTimeout, "probe-timeout", 10*time.Second, "timeout of each liveness and auth probe")
	fs.DurationVar(&o.templateTimeout, "probe-template-timeout", time.Second, "time bound of each probe template (a path or header value)")
	fs.DurationVar(&o.resync, "resync", 5*time.Minute, "how often connectors are probed again (jittered)")
}

func (o *reconcilerOptions) options(c client.Client, apiReader client.Reader, rec reconciler.EventRecorder, log logr.Logger) reconciler.Options {
	return reconciler.Options{
		Client: c, APIReader: apiReader, Recorder: rec, Namespace: o.namespace, ClusterDomain: o.clusterDomain,
		ProxyURLTemplate: o.proxyTemplate, ProbeTimeout: o.probeTimeout, TemplateTimeout: o.templateTimeout,
		Resync: o.resync, Logger: log,
	}
}
