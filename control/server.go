package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/connectors-io/connectors/internal/httplog"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

// Routes of the control API, for gorilla/mux.
const (
	// TokenPath is the token API.
	TokenPath = "/v1/namespaces/{namespace}/connectors/{name}/token"
	// ConfigurationsPath is the configurations API.
	ConfigurationsPath = "/v1/namespaces/{namespace}/connectors/{name}/configurations/{configuration}"
	// ReconcilePath triggers the reconcile of one connector.
	ReconcilePath = "/v1/reconcile/{namespace}/{name}"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create

// Server is the control API. Build it with New; serve it with Start, or
// mount Handler elsewhere.
type Server struct {
	opts     Options
	router   *mux.Router
	triggers *tokens.Reviewer // for the trigger audience
	callers  *tokens.Reviewer // for the API server's own audience
	getters  *tokens.Authorizer
	resolver *render.Resolver
	tokenRL  *callerLimiter
	configRL *callerLimiter
}

// New checks opts, fills defaults and builds the routes.
func New(opts Options) (*Server, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, router: mux.NewRouter(), resolver: &render.Resolver{Reader: opts.Reader, Authorizer: opts.Authorizer}}
	var err error
	if s.triggers, err = tokens.NewReviewer(opts.Clientset, []string{opts.TriggerAudience}); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// Callers of the token and configurations APIs present their own API
	// token: the API server's audience (nil).
	if s.callers, err = tokens.NewReviewer(opts.Clientset, nil); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// Whether a trigger's caller may read a connector's conditions: RBAC
	// only, no same-namespace shortcut.
	if s.getters, err = tokens.NewAuthorizer(tokens.AuthorizerOptions{Client: opts.Clientset, RequireSAR: true}); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if s.tokenRL, err = newCallerLimiter(opts.Rate, opts.Burst, opts.MaxCallers); err != nil {
		return nil, err
	}
	if s.configRL, err = newCallerLimiter(opts.Rate, opts.Burst, opts.MaxCallers); err != nil {
		return nil, err
	}
	s.router.HandleFunc("/", s.serveEvent).Methods(http.MethodPost)
	s.router.HandleFunc(ReconcilePath, s.serveReconcile).Methods(http.MethodPost)
	s.router.HandleFunc(TokenPath, s.serveToken).Methods(http.MethodPost)
	if opts.ProxyCA != nil {
		s.router.HandleFunc(ConfigurationsPath, s.serveConfiguration).Methods(http.MethodGet)
	} else {
		opts.Logger.Info("no gateway CA: the configurations API is not served")
	}
	s.router.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
	s.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path)
	})
	return s, nil
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler { return s.router }

// Start serves on Options.Listener until ctx ends, then stops accepting and
// lets requests in flight finish for up to Options.ShutdownTimeout.
func (s *Server) Start(ctx context.Context) error {
	l := s.opts.Listener
	if l == nil {
		return errors.New("control: Options.Listener is required to start")
	}
	srv := &http.Server{Handler: s.router, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: httplog.ErrorLog(s.opts.Logger.WithName("http"))}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("control: serve on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("control: shut down the server on %s: %w", l.Addr(), err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("control: serve on %s: %w", l.Addr(), serr))
	}
	return err
}
