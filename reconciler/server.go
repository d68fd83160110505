package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/go-logr/logr"
	"github.com/gorilla/mux"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// ServerOptions configure the control server.
type ServerOptions struct {
	// Reconciler options; in serverless mode Client is uncached.
	Reconciler Options
	// Mount adds further routes, for example the token API.
	Mount []func(*mux.Router)
	// Concurrency bounds the connectors reconciled at once for one event
	// (a Secret or class used by many). Default 8.
	Concurrency int
	// Logger receives one line per request. Default: discard.
	Logger logr.Logger
}

// Server is the control API: CloudEvents (binary and structured, as a
// Knative ApiServerSource sends them) and POST /v1/reconcile/{ns}/{name},
// each running the reconcilers synchronously, plus mounted routes.
type Server struct {
	opts      ServerOptions
	connector *ConnectorReconciler
	class     *ClassReconciler
	router    *mux.Router
}

// Result is the outcome of reconciling one connector.
type Result struct {
	// Namespace and Name of the connector.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Ready is the connector's Ready condition after the reconcile; absent
	// when the connector no longer exists.
	Ready *connectorsv1alpha1.Condition `json:"ready,omitempty"`
	// Error says why the reconcile failed, if it did.
	Error string `json:"error,omitempty"`
}

// EventResponse answers a CloudEvent.
type EventResponse struct {
	// Results has one entry per connector reconciled.
	Results []Result `json:"results"`
	// Ignored says why nothing was done, if nothing was.
	Ignored string `json:"ignored,omitempty"`
}

// NewServer builds the server.
func NewServer(opts ServerOptions) (*Server, error) {
	cr, err := NewConnectorReconciler(opts.Reconciler)
	if err != nil {
		return nil, err
	}
	cl, err := NewClassReconciler(opts.Reconciler)
	if err != nil {
		return nil, err
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	s := &Server{opts: opts, connector: cr, class: cl, router: mux.NewRouter()}
	s.router.HandleFunc("/", s.serveEvent).Methods(http.MethodPost)
	s.router.HandleFunc("/v1/reconcile/{namespace}/{name}", s.serveReconcile).Methods(http.MethodPost)
	s.router.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	for _, m := range opts.Mount {
		m(s.router)
	}
	return s, nil
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler { return s.router }

// maxEventBytes bounds a CloudEvent.
const maxEventBytes = 4 << 20

func (s *Server) serveReconcile(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	res := s.reconcileConnector(r.Context(), v["namespace"], v["name"])
	switch {
	case res.Error != "":
		writeJSON(w, http.StatusInternalServerError, res)
	case res.Ready == nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("connector %s not found in namespace %s", v["name"], v["namespace"])})
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// eventObject is the data of an ApiServerSource event: the whole object
// (Resource mode) or a reference (Reference mode).
type eventObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

func (s *Server) serveEvent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxEventBytes)
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "not a CloudEvent (binary or structured mode): " + err.Error()})
		return
	}
	if err := ev.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid CloudEvent: " + err.Error()})
		return
	}
	var obj eventObject
	if err := json.Unmarshal(ev.Data(), &obj); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the event's data is not a Kubernetes object or reference: " + err.Error()})
		return
	}
	name, ns := obj.Metadata.Name, obj.Metadata.Namespace
	if name == "" {
		name, ns = obj.Name, obj.Namespace
	}
	if obj.Kind == "" || name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the event's data names no kind and name"})
		return
	}
	group := obj.APIVersion
	if i := strings.LastIndex(group, "/"); i >= 0 {
		group = group[:i]
	} else {
		group = ""
	}
	ctx := r.Context()
	var resp EventResponse
	switch {
	case obj.Kind == "Connector" && group == connectorsv1alpha1.Group:
		resp.Results = []Result{s.reconcileConnector(ctx, ns, name)}
	case obj.Kind == "ConnectorClass" && group == connectorsv1alpha1.Group:
		if _, err := s.class.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: name}}); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		resp.Results = s.reconcileMatching(ctx, func(c *connectorsv1alpha1.Connector) bool { return c.Spec.ConnectorClassName == name })
	case obj.Kind == "Secret" && group == "":
		caSecret := ns == s.opts.Reconciler.Namespace && obj.Metadata.Labels[CACertLabel] == "true"
		resp.Results = s.reconcileMatching(ctx, func(c *connectorsv1alpha1.Connector) bool {
			if caSecret {
				return true
			}
			if c.Namespace != ns {
				return false
			}
			for _, n := range referencedSecrets(c) {
				if n == name {
					return true
				}
			}
			return false
		})
	default:
		writeJSON(w, http.StatusAccepted, EventResponse{Results: []Result{}, Ignored: "events about " + obj.Kind + " (" + obj.APIVersion + ") are not handled"})
		return
	}
	if resp.Results == nil {
		resp.Results = []Result{}
	}
	s.opts.Logger.Info("event handled", "type", ev.Type(), "kind", obj.Kind, "namespace", ns, "name", name, "connectors", len(resp.Results))
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) reconcileConnector(ctx context.Context, ns, name string) Result {
	res := Result{Namespace: ns, Name: name}
	key := client.ObjectKey{Namespace: ns, Name: name}
	if _, err := s.connector.Reconcile(ctx, reconcile.Request{NamespacedName: key}); err != nil {
		res.Error = err.Error()
		return res
	}
	var c connectorsv1alpha1.Connector
	if err := s.opts.Reconciler.Client.Get(ctx, key, &c); err != nil {
		if !apierrors.IsNotFound(err) {
			res.Error = err.Error()
		}
		return res
	}
	res.Ready = connectorsv1alpha1.FindCondition(c.Status.Conditions, connectorsv1alpha1.ConditionReady)
	return res
}

// reconcileMatching reconciles every connector that match selects, a few
// at a time. Connectors are listed straight from the API server.
func (s *Server) reconcileMatching(ctx context.Context, match func(*connectorsv1alpha1.Connector) bool) []Result {
	var list connectorsv1alpha1.ConnectorList
	if err := s.opts.Reconciler.Client.List(ctx, &list); err != nil {
		return []Result{{Error: "list connectors: " + err.Error()}}
	}
	var mu sync.Mutex
	results := []Result{}
	g := new(errgroup.Group)
	g.SetLimit(s.opts.Concurrency)
	for i := range list.Items {
		c := &list.Items[i]
		if !match(c) {
			continue
		}
		g.Go(func() error {
			res := s.reconcileConnector(ctx, c.Namespace, c.Name)
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return results
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve runs handler on addr until ctx ends, then stops accepting and lets
// requests in flight finish for up to 10 seconds.
func Serve(ctx context.Context, addr string, handler http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ServeListener(ctx, l, handler)
}

// ServeListener is Serve on an open listener.
func ServeListener(ctx context.Context, l net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut down the server on %s: %w", l.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", l.Addr(), err)
	}
	return nil
}
