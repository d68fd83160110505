package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/go-logr/logr"
	"github.com/gorilla/mux"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/reconciler"
	"github.com/connectors-io/connectors/tokens"
)

// EventResponse answers a trigger.
type EventResponse struct {
	// Results has one entry per connector reconciled (serverless mode).
	Results []reconciler.Result `json:"results"`
	// Queued are the connectors handed to the controller (watch mode).
	Queued []connectorsv1alpha1.ConnectorRef `json:"queued,omitempty"`
	// Ignored says why nothing was done, if nothing was.
	Ignored string `json:"ignored,omitempty"`
}

// maxEventBytes bounds a CloudEvent.
const maxEventBytes = 4 << 20

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
	log := s.opts.Logger.WithValues("route", "event")
	caller, ok := s.authenticateTrigger(w, r, log)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxEventBytes)
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a CloudEvent (binary or structured mode): "+err.Error())
		return
	}
	if err := ev.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid CloudEvent: "+err.Error())
		return
	}
	var obj eventObject
	if err := json.Unmarshal(ev.Data(), &obj); err != nil {
		writeError(w, http.StatusBadRequest, "the event's data is not a Kubernetes object or reference: "+err.Error())
		return
	}
	name, ns := obj.Metadata.Name, obj.Metadata.Namespace
	if name == "" {
		name, ns = obj.Name, obj.Namespace
	}
	if obj.Kind == "" || name == "" {
		writeError(w, http.StatusBadRequest, "the event's data names no kind and name")
		return
	}
	o, handled := reconciler.ObjectOf(obj.APIVersion, obj.Kind, ns, name, obj.Metadata.Labels)
	if !handled {
		writeJSON(w, http.StatusAccepted, EventResponse{Results: []reconciler.Result{}, Ignored: "events about " + obj.Kind + " (" + obj.APIVersion + ") are not handled"})
		return
	}
	log = log.WithValues("type", ev.Type(), "kind", o.Kind, "namespace", o.Namespace, "name", o.Name, "caller", caller.String())
	if !s.authorizeTrigger(r.Context(), w, caller, o, log) {
		return
	}
	s.trigger(w, r, caller, o, log)
}

func (s *Server) serveReconcile(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	log := s.opts.Logger.WithValues("route", "reconcile", "namespace", v["namespace"], "name", v["name"])
	caller, ok := s.authenticateTrigger(w, r, log)
	if !ok {
		return
	}
	log = log.WithValues("caller", caller.String())
	o := reconciler.Object{Kind: reconciler.KindConnector, Namespace: v["namespace"], Name: v["name"]}
	if !s.authorizeTrigger(r.Context(), w, caller, o, log) {
		return
	}
	s.trigger(w, r, caller, o, log)
}

// authenticateTrigger checks the caller's token for the trigger audience.
func (s *Server) authenticateTrigger(w http.ResponseWriter, r *http.Request, log logr.Logger) (tokens.Identity, bool) {
	return authenticated(w, r, s.triggers, "trigger reconciles", "a ServiceAccount token for the audience "+s.opts.TriggerAudience, log)
}

// authorizeTrigger asks whether the caller may update connectors/status
// where the change of o applies.
func (s *Server) authorizeTrigger(ctx context.Context, w http.ResponseWriter, caller tokens.Identity, o reconciler.Object, log logr.Logger) bool {
	attrs := &authorizationv1.ResourceAttributes{
		Namespace: o.Scope(s.installNamespace()), Verb: "update",
		Group: connectorsv1alpha1.Group, Resource: "connectors", Subresource: "status",
	}
	if o.Kind == reconciler.KindConnector {
		attrs.Name = o.Name
	}
	resp, err := s.opts.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, caller.AccessReview(attrs), metav1.CreateOptions{})
	if err != nil {
		log.Error(err, "authorize a trigger")
		writeError(w, http.StatusServiceUnavailable, "cannot authorize the caller now; try again later")
		return false
	}
	if !resp.Status.Allowed {
		where := "in namespace " + attrs.Namespace
		if attrs.Namespace == "" {
			where = "cluster-wide"
		}
		msg := fmt.Sprintf("serviceaccount %s/%s may not trigger reconciles here: it needs update on connectors/status (connectors.alauda.io) %s (bind the ClusterRole connectors-trigger)",
			caller.Namespace, caller.ServiceAccountName, where)
		log.Info("request refused", "status", http.StatusForbidden, "reason", msg)
		writeError(w, http.StatusForbidden, msg)
		return false
	}
	return true
}

func (s *Server) installNamespace() string {
	if s.opts.Runner != nil {
		return s.opts.Runner.InstallNamespace()
	}
	return s.opts.Queue.InstallNamespace()
}

// trigger reconciles (serverless) or enqueues (watch mode) what o concerns
// and answers.
func (s *Server) trigger(w http.ResponseWriter, r *http.Request, caller tokens.Identity, o reconciler.Object, log logr.Logger) {
	ctx := r.Context()
	single := r.URL.Path != "/" // POST /v1/reconcile: one connector, 404 when missing
	if s.opts.Queue != nil {
		queued, err := s.opts.Queue.Enqueue(ctx, o)
		switch {
		case errors.Is(err, reconciler.ErrQueueFull):
			log.Info("request refused", "status", http.StatusServiceUnavailable, "reason", "queue full", "queued", len(queued))
			writeError(w, http.StatusServiceUnavailable, "the controller is behind (its trigger queue is full); retry later")
			return
		case err != nil:
			log.Error(err, "enqueue a trigger")
			writeError(w, http.StatusServiceUnavailable, "cannot enqueue the trigger now; try again later")
			return
		case single && len(queued) == 0:
			writeError(w, http.StatusNotFound, fmt.Sprintf("connector %s not found in namespace %s", o.Name, o.Namespace))
			return
		}
		log.Info("trigger queued", "connectors", len(queued))
		writeJSON(w, http.StatusAccepted, EventResponse{Results: []reconciler.Result{}, Queued: queued})
		return
	}
	results, err := s.opts.Runner.Run(ctx, o)
	if err != nil {
		log.Error(err, "run a trigger")
		writeError(w, http.StatusServiceUnavailable, "cannot reconcile now; try again later")
		return
	}
	results = s.visible(ctx, caller, results)
	log.Info("trigger handled", "connectors", len(results))
	if !single {
		writeJSON(w, http.StatusOK, EventResponse{Results: results})
		return
	}
	switch res := results[0]; {
	case res.Error != "":
		writeJSON(w, http.StatusInternalServerError, res)
	case !res.Found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("connector %s not found in namespace %s", o.Name, o.Namespace))
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// visible removes the condition reasons and messages (and error texts) of
// the connectors the caller may not get.
func (s *Server) visible(ctx context.Context, caller tokens.Identity, results []reconciler.Result) []reconciler.Result {
	if len(results) == 0 {
		return results
	}
	// One review for callers that may get every connector.
	if s.getters.Authorize(ctx, caller, "", "") == nil {
		return results
	}
	for i := range results {
		res := &results[i]
		if s.getters.Authorize(ctx, caller, res.Namespace, res.Name) == nil {
			continue
		}
		if res.Ready != nil {
			res.Ready = &connectorsv1alpha1.Condition{Type: res.Ready.Type, Status: res.Ready.Status}
		}
		if res.Error != "" {
			res.Error = "the reconcile failed (you may not get this connector: the reason is withheld)"
		}
	}
	return results
}
