package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

// ConfigurationResponse is the JSON answer of the configurations API.
type ConfigurationResponse struct {
	// Files are the rendered files by name.
	Files map[string]string `json:"files"`
}

// serveConfiguration: a ServiceAccount caller, authenticated by its own
// bearer token and authorized like the gateway does, gets the configuration
// of a usable connector rendered with a proxy token of its own
// ServiceAccount (bound to its pod when its token is), as JSON
// {"files": {name: content}} or, with ?file=NAME, that file as text/plain.
func (s *Server) serveConfiguration(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	ns, name, configuration := v["namespace"], v["name"], v["configuration"]
	file := r.URL.Query().Get("file")
	log := s.opts.Logger.WithValues("route", "configurations", "namespace", ns, "connector", name, "configuration", configuration)
	fail := func(code int, msg string) {
		log.Info("request refused", "status", code, "reason", msg)
		writeError(w, code, msg)
	}
	caller, ok := authenticated(w, r, s.callers, "fetch connector configurations", "", log)
	if !ok {
		return
	}
	log = log.WithValues("caller", caller.String())
	if !s.configRL.allow(caller.Username()) {
		fail(http.StatusTooManyRequests, "too many configuration requests from "+caller.Username()+"; retry later")
		return
	}
	if file != "" {
		if err := render.ValidateFileName(file); err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
	}
	files, err := s.render(r.Context(), caller, connectorsv1alpha1.ConnectorRef{Namespace: ns, Name: name}, configuration, file)
	if err != nil {
		code := renderStatus(err)
		if code >= 500 {
			// The caller gets the message; the log gets the cause.
			cause := errors.Unwrap(err)
			if cause == nil {
				cause = err
			}
			log.Error(cause, "render a configuration")
		}
		fail(code, err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if file != "" {
		content, ok := files[file]
		if !ok { // checked before minting; kept for safety
			fail(http.StatusNotFound, fmt.Sprintf("configuration %s has no file %s", configuration, file))
			return
		}
		log.Info("configuration file served", "file", file)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(content)
		return
	}
	resp := ConfigurationResponse{Files: make(map[string]string, len(files))}
	for n, b := range files {
		resp.Files[n] = string(b)
	}
	log.Info("configuration served", "files", len(files))
	writeJSON(w, http.StatusOK, resp)
}

// unavailable is a 503: a message for the caller, the cause for the log.
type unavailable struct {
	msg   string
	cause error
}

func (e *unavailable) Error() string        { return e.msg }
func (e *unavailable) Is(target error) bool { return target == render.ErrUnavailable }
func (e *unavailable) Unwrap() error        { return e.cause }

// render resolves the connector for the caller, mints its token and renders.
func (s *Server) render(ctx context.Context, caller tokens.Identity, ref connectorsv1alpha1.ConnectorRef, configuration, file string) (render.Files, error) {
	if configuration == "" || strings.ContainsAny(configuration, ",!") {
		return nil, fmt.Errorf("%w: configuration %q must be a single configuration name", render.ErrInvalid, configuration)
	}
	res, err := s.resolver.Resolve(ctx, caller, []connectorsv1alpha1.ConnectorRef{ref})
	if err != nil {
		return nil, err
	}
	if file != "" {
		// Refuse an unknown file before minting a token for nothing.
		names := render.BuiltinFiles()
		for _, c := range res.Class.Spec.Configurations {
			if c.Name == configuration {
				for n := range c.Data {
					names = append(names, n)
				}
			}
		}
		sort.Strings(names)
		if !slices.Contains(names, file) {
			return nil, fmt.Errorf("%w: configuration %s has no file %s (files: %s)", render.ErrNotFound, configuration, file, strings.Join(names, ", "))
		}
	}
	ca, err := s.opts.ProxyCA()
	if err != nil || len(ca) == 0 {
		if err == nil {
			err = errors.New("the gateway CA certificate is empty")
		}
		return nil, &unavailable{msg: "cannot read the gateway CA certificate now; try again later", cause: err}
	}
	tok, _, err := s.mintFor(ctx, caller, s.opts.DefaultLifetime)
	if err != nil {
		return nil, &unavailable{msg: "cannot mint a token now; try again later", cause: err}
	}
	return render.Render(render.Input{
		Class: res.Class, Classes: res.Classes, Connectors: res.Connectors, Token: tok, ProxyCACert: ca,
		Selection: configuration, Limits: s.opts.RenderLimits,
	})
}

// renderStatus translates an error of render (Resolve or Render) at the
// HTTP boundary.
func renderStatus(err error) int {
	for _, m := range []struct {
		kind error
		code int
	}{
		{render.ErrInvalid, http.StatusBadRequest},
		{render.ErrNotFound, http.StatusNotFound},
		{render.ErrForbidden, http.StatusForbidden},
		{render.ErrPrecondition, http.StatusConflict},
		{render.ErrUnavailable, http.StatusServiceUnavailable},
		// The ConnectorClass must be fixed; the request itself is fine.
		{render.ErrTemplate, http.StatusConflict},
	} {
		if errors.Is(err, m.kind) {
			return m.code
		}
	}
	return http.StatusInternalServerError
}
