package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/tokens"
)

// TokenResponse is the answer of the token API.
type TokenResponse struct {
	// Token is the proxy token (the password of the proxy URL).
	Token string `json:"token"`
	// ExpirationTimestamp is when the token expires.
	ExpirationTimestamp time.Time `json:"expirationTimestamp"`
	// ProxyURL is the connector's proxy address with the namespace/name user
	// and the token as password: ready for HTTPS_PROXY or a kubeconfig.
	ProxyURL string `json:"proxyURL"`
}

// TokenRequestBody is the optional JSON body of a token request.
type TokenRequestBody struct {
	// ExpirationSeconds is the requested lifetime (600 up to the maximum).
	ExpirationSeconds int64 `json:"expirationSeconds,omitempty"`
}

// serveToken: a ServiceAccount caller, authenticated by its own bearer
// token and authorized like the gateway does, gets a proxy token of its own
// ServiceAccount (bound to its pod when its token is) and the connector's
// proxy URL, for a usable connector only.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	ns, name := mux.Vars(r)["namespace"], mux.Vars(r)["name"]
	log := s.opts.Logger.WithValues("route", "token", "namespace", ns, "connector", name)
	fail := func(code int, msg string) {
		log.Info("request refused", "status", code, "reason", msg)
		writeError(w, code, msg)
	}
	caller, ok := authenticated(w, r, s.callers, "request connector tokens", "", log)
	if !ok {
		return
	}
	log = log.WithValues("caller", caller.String())
	if !s.tokenRL.allow(caller.Username()) {
		fail(http.StatusTooManyRequests, "too many token requests from "+caller.Username()+"; retry later")
		return
	}
	lifetime, err := s.lifetime(r)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if err := s.opts.Authorizer.Authorize(r.Context(), caller, ns, name); err != nil {
		if errors.Is(err, tokens.ErrForbidden) {
			fail(http.StatusForbidden, err.Error())
		} else {
			log.Error(err, "authorize a token API caller")
			fail(http.StatusServiceUnavailable, "cannot authorize the caller now; try again later")
		}
		return
	}
	var conn connectorsv1alpha1.Connector
	if err := s.opts.Reader.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, &conn); err != nil {
		if apierrors.IsNotFound(err) {
			fail(http.StatusNotFound, fmt.Sprintf("connector %s not found in namespace %s", name, ns))
		} else {
			log.Error(err, "read the connector")
			fail(http.StatusServiceUnavailable, "cannot read the connector now; try again later")
		}
		return
	}
	if err := conn.Usable(); err != nil {
		fail(http.StatusConflict, err.Error())
		return
	}
	tok, exp, err := s.mintFor(r.Context(), caller, lifetime)
	if err != nil {
		log.Error(err, "mint a proxy token")
		fail(http.StatusServiceUnavailable, "cannot mint a token now; try again later")
		return
	}
	proxyURL, err := connectorsv1alpha1.ProxyURL(conn.ProxyAddress(), string(tok), conn.Ref())
	if err != nil {
		fail(http.StatusConflict, fmt.Sprintf("connector %s has an unusable proxy address: %v", conn.Ref(), err))
		return
	}
	log.Info("token issued", "expires", exp)
	writeJSON(w, http.StatusOK, TokenResponse{Token: string(tok), ExpirationTimestamp: exp.UTC(), ProxyURL: proxyURL})
}

// maxTokenBodyBytes bounds the request body.
const maxTokenBodyBytes = 4 << 10

func (s *Server) lifetime(r *http.Request) (time.Duration, error) {
	var body TokenRequestBody
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxTokenBodyBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("the body must be JSON like {\"expirationSeconds\": 1800}: %w", err)
		}
	}
	if body.ExpirationSeconds == 0 {
		return s.opts.DefaultLifetime, nil
	}
	// Compared in seconds: a huge value would overflow a Duration.
	lo, hi := int64(tokens.MinExpiration/time.Second), int64(s.opts.MaxLifetime/time.Second)
	if body.ExpirationSeconds < lo || body.ExpirationSeconds > hi {
		return 0, fmt.Errorf("expirationSeconds must be between %d and %d", lo, hi)
	}
	return time.Duration(body.ExpirationSeconds) * time.Second, nil
}
