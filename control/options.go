package control

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/connectors-io/connectors/reconciler"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

// DefaultTriggerAudience is the default of Options.TriggerAudience.
const DefaultTriggerAudience = "connectors-control"

// Options configure the control API.
type Options struct {
	// Clientset creates TokenReviews, SubjectAccessReviews and
	// TokenRequests. Required.
	Clientset kubernetes.Interface
	// Reader reads Connectors and ConnectorClasses for the token and
	// configurations APIs (an uncached client is fine). Required.
	Reader client.Reader

	// Runner reconciles each trigger synchronously (serverless mode).
	// Exactly one of Runner and Queue is required.
	Runner *reconciler.Runner
	// Queue hands each trigger to the watch-mode controllers: only the
	// elected leader reconciles.
	Queue *reconciler.Queue
	// TriggerAudience is the audience trigger callers' tokens must carry
	// (the sink audience of Knative's OIDC authentication). Default
	// DefaultTriggerAudience.
	TriggerAudience string

	// ProxyCA returns the gateway CA certificate (PEM), read on every
	// configurations request (see csi.CAFile). Nil: the configurations API
	// is not served.
	ProxyCA func() ([]byte, error)
	// Authorizer decides whether a caller may use a connector, as the
	// gateway does. Default: one on Clientset (with RequireRBAC).
	Authorizer *tokens.Authorizer
	// RequireRBAC makes the default Authorizer ask for RBAC get on the
	// connector in its own namespace too.
	RequireRBAC bool
	// Minter mints the callers' proxy tokens. Default: one on Clientset.
	Minter *tokens.Minter
	// DefaultLifetime of a token from the token API, and the lifetime of the
	// token in a rendered configuration. Default 30m.
	DefaultLifetime time.Duration
	// MaxLifetime a caller of the token API may ask for. Default 1h.
	MaxLifetime time.Duration
	// Rate is the sustained token and configuration requests per second of
	// one caller (ServiceAccount). Default 1.
	Rate rate.Limit
	// Burst is the burst of one caller. Default 5.
	Burst int
	// MaxCallers bounds the per-caller rate limiters kept (least recently
	// used first out). Default 10000.
	MaxCallers int
	// RenderLimits bound each rendering. Zero values mean render's defaults.
	RenderLimits render.Limits

	// Listener receives the callers. Required for Start.
	Listener net.Listener
	// ShutdownTimeout is how long requests in flight may finish once Start's
	// context ends. Default 10s.
	ShutdownTimeout time.Duration
	// Logger receives one line per request (never tokens or rendered
	// contents). Default: discard.
	Logger logr.Logger
}

func (o *Options) defaults() error {
	if o.Clientset == nil || o.Reader == nil {
		return errors.New("control: Options.Clientset and .Reader are required")
	}
	if (o.Runner == nil) == (o.Queue == nil) {
		return errors.New("control: exactly one of Options.Runner (serverless) and Options.Queue (watch mode) is required")
	}
	if o.TriggerAudience == "" {
		o.TriggerAudience = DefaultTriggerAudience
	}
	var err error
	if o.Authorizer == nil {
		if o.Authorizer, err = tokens.NewAuthorizer(tokens.AuthorizerOptions{Client: o.Clientset, RequireSAR: o.RequireRBAC}); err != nil {
			return fmt.Errorf("control: %w", err)
		}
	}
	if o.Minter == nil {
		if o.Minter, err = tokens.NewMinter(tokens.MinterOptions{Client: o.Clientset}); err != nil {
			return fmt.Errorf("control: %w", err)
		}
	}
	if o.DefaultLifetime == 0 {
		o.DefaultLifetime = tokens.DefaultExpiration
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = time.Hour
	}
	if o.DefaultLifetime < tokens.MinExpiration || o.MaxLifetime < o.DefaultLifetime {
		return fmt.Errorf("control: token lifetimes must satisfy %s <= default (%s) <= max (%s)", tokens.MinExpiration, o.DefaultLifetime, o.MaxLifetime)
	}
	if o.Rate <= 0 {
		o.Rate = 1
	}
	if o.Burst <= 0 {
		o.Burst = 5
	}
	if o.MaxCallers <= 0 {
		o.MaxCallers = 10000
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return nil
}
