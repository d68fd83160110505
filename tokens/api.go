package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/mux"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create

// TokenPath is the route of the token API, for gorilla/mux.
const TokenPath = "/v1/namespaces/{namespace}/connectors/{name}/token"

// APIOptions configure the token API.
type APIOptions struct {
	// Callers authenticates the caller's own bearer token (a Reviewer whose
	// audiences are the API server's own, i.e. nil). Required.
	Callers *Reviewer
	// Authorizer decides whether the caller may use the connector. Required.
	Authorizer *Authorizer
	// Minter mints the proxy token for the caller. Required.
	Minter *Minter
	// Connectors reads Connectors (an uncached client is fine). Required.
	Connectors client.Reader
	// DefaultLifetime of a token. Default 30m.
	DefaultLifetime time.Duration
	// MaxLifetime a caller may ask for. Default 1h.
	MaxLifetime time.Duration
	// Rate is the sustained requests per second of one caller. Default 1.
	Rate rate.Limit
	// Burst is the burst of one caller. Default 5.
	Burst int
	// MaxCallers bounds the per-caller rate limiters kept. Default 10000.
	MaxCallers int
	// Logger receives one line per request (never the tokens). Default: discard.
	Logger logr.Logger
}

// API serves POST /v1/namespaces/{ns}/connectors/{name}/token: a
// ServiceAccount caller, authenticated by its own bearer token and
// authorized like the gateway does, gets a proxy token of its own
// ServiceAccount and the connector's proxy URL.
type API struct {
	opts    APIOptions
	limiter *CallerLimiter
}

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

// NewAPI checks opts and fills defaults.
func NewAPI(opts APIOptions) (*API, error) {
	if opts.Callers == nil || opts.Authorizer == nil || opts.Minter == nil || opts.Connectors == nil {
		return nil, errors.New("tokens: APIOptions.Callers, .Authorizer, .Minter and .Connectors are required")
	}
	if opts.DefaultLifetime == 0 {
		opts.DefaultLifetime = DefaultExpiration
	}
	if opts.MaxLifetime == 0 {
		opts.MaxLifetime = time.Hour
	}
	if opts.DefaultLifetime < MinExpiration || opts.MaxLifetime < opts.DefaultLifetime {
		return nil, fmt.Errorf("tokens: token lifetimes must satisfy %s <= default (%s) <= max (%s)", MinExpiration, opts.DefaultLifetime, opts.MaxLifetime)
	}
	if opts.Rate == 0 {
		opts.Rate = 1
	}
	if opts.Burst == 0 {
		opts.Burst = 5
	}
	if opts.MaxCallers <= 0 {
		opts.MaxCallers = 10000
	}
	limiter, err := NewCallerLimiter(opts.Rate, opts.Burst, opts.MaxCallers)
	if err != nil {
		return nil, err
	}
	return &API{opts: opts, limiter: limiter}, nil
}

// Register adds the route to r.
func (a *API) Register(r *mux.Router) {
	r.HandleFunc(TokenPath, a.serveToken).Methods(http.MethodPost)
}

func (a *API) serveToken(w http.ResponseWriter, r *http.Request) {
	ns, name := mux.Vars(r)["namespace"], mux.Vars(r)["name"]
	log := a.opts.Logger.WithValues("namespace", ns, "connector", name)
	fail := func(code int, msg string) {
		log.Info("token request refused", "status", code, "reason", msg)
		writeError(w, code, msg)
	}

	caller, cerr := a.opts.Callers.AuthenticateCaller(r, "request connector tokens")
	if cerr != nil {
		if cerr.Err != nil {
			log.Error(cerr.Err, "authenticate a token API caller")
		}
		if cerr.Challenge != "" {
			w.Header().Set("WWW-Authenticate", cerr.Challenge)
		}
		fail(cerr.Status, cerr.Message)
		return
	}
	log = log.WithValues("caller", caller.String())
	if !a.limiter.Allow(caller.Username()) {
		w.Header().Set("Retry-After", "1")
		fail(http.StatusTooManyRequests, "too many token requests from "+caller.Username()+"; retry later")
		return
	}
	lifetime, err := a.lifetime(r)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if err := a.opts.Authorizer.Authorize(r.Context(), caller, ns, name); err != nil {
		if errors.Is(err, ErrForbidden) {
			fail(http.StatusForbidden, err.Error())
		} else {
			log.Error(err, "authorize a token API caller")
			fail(http.StatusServiceUnavailable, "cannot authorize the caller now; try again later")
		}
		return
	}
	var conn connectorsv1alpha1.Connector
	if err := a.opts.Connectors.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, &conn); err != nil {
		if apierrors.IsNotFound(err) {
			fail(http.StatusNotFound, fmt.Sprintf("connector %s not found in namespace %s", name, ns))
		} else {
			log.Error(err, "read the connector")
			fail(http.StatusServiceUnavailable, "cannot read the connector now; try again later")
		}
		return
	}
	proxy := ""
	if p := conn.Status.Proxy; p != nil && p.HTTPAddress != nil {
		proxy = p.HTTPAddress.URL
	}
	if proxy == "" {
		fail(http.StatusConflict, fmt.Sprintf("connector %s/%s has no proxy address yet: see kubectl describe connector %s -n %s", ns, name, name, ns))
		return
	}
	tok, exp, err := a.mint(r, caller, lifetime)
	if err != nil {
		log.Error(err, "mint a proxy token")
		fail(http.StatusServiceUnavailable, "cannot mint a token now; try again later")
		return
	}
	proxyURL, err := ProxyURL(proxy, ns, name, tok)
	if err != nil {
		fail(http.StatusConflict, fmt.Sprintf("connector %s/%s has an unusable proxy address: %v", ns, name, err))
		return
	}
	log.Info("token issued", "expires", exp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(TokenResponse{Token: string(tok), ExpirationTimestamp: exp.UTC(), ProxyURL: proxyURL})
}

func (a *API) mint(r *http.Request, caller Identity, lifetime time.Duration) (Token, time.Time, error) {
	if caller.PodName != "" && caller.PodUID != "" {
		// Bound to the caller's own pod, so that deleting it revokes the token.
		return a.opts.Minter.MintForPod(r.Context(), PodRef{
			Namespace: caller.Namespace, Name: caller.PodName, UID: types.UID(caller.PodUID), ServiceAccount: caller.ServiceAccountName,
		}, lifetime)
	}
	return a.opts.Minter.MintForServiceAccount(r.Context(), caller.Namespace, caller.ServiceAccountName, lifetime)
}

// maxBodyBytes bounds the request body.
const maxBodyBytes = 4 << 10

func (a *API) lifetime(r *http.Request) (time.Duration, error) {
	var body TokenRequestBody
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("the body must be JSON like {\"expirationSeconds\": 1800}: %w", err)
		}
	}
	if body.ExpirationSeconds == 0 {
		return a.opts.DefaultLifetime, nil
	}
	d := time.Duration(body.ExpirationSeconds) * time.Second
	if d < MinExpiration || d > a.opts.MaxLifetime {
		return 0, fmt.Errorf("expirationSeconds must be between %d and %d", int64(MinExpiration/time.Second), int64(a.opts.MaxLifetime/time.Second))
	}
	return d, nil
}

// ProxyURL puts the user <namespace>/<name> (URL-encoded) and the token as
// password into the connector's proxy address, as the kubeconfig's
// proxy-url does.
func ProxyURL(proxyAddress, namespace, name string, token Token) (string, error) {
	u, err := url.Parse(proxyAddress)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("proxy address %q is not an absolute URL", proxyAddress)
	}
	// url.UserPassword would leave "/" in the user name unescaped.
	return u.Scheme + "://" + url.QueryEscape(namespace+"/"+name) + ":" + url.QueryEscape(string(token)) + "@" + u.Host + u.EscapedPath(), nil
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
