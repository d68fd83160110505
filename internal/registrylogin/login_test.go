package registrylogin

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// TestErrorsKeepStatusAndCodesButNoBody: what a token service said beyond
// its status and error codes stays out of every error.
func TestErrorsKeepStatusAndCodesButNoBody(t *testing.T) {
	secretBody := errors.New("no token in bearer response:\n{\"refresh_token\":\"s3cr3t\"}")
	if got := Sanitize(secretBody, nil).Error(); strings.Contains(got, "s3cr3t") {
		t.Errorf("%q quotes the body", got)
	}
	terr := &transport.Error{StatusCode: 401, Errors: []transport.Diagnostic{{Code: "UNAUTHORIZED", Message: "token s3cr3t", Detail: "s3cr3t"}}}
	got := Sanitize(fmt.Errorf("wrapped: %w", terr), nil)
	var status *StatusError
	if strings.Contains(got.Error(), "s3cr3t") || !strings.Contains(got.Error(), "401 (UNAUTHORIZED)") || !errors.As(got, &status) || status.Status != 401 {
		t.Errorf("%q: want the status and the code only, as a StatusError", got)
	}
}

// TestALoginNeverFallsBackToPlainHTTPForAnHTTPSRegistry: a registry that
// answers plain HTTP on the port of an https address gets no request in
// the clear (go-containerregistry would retry over http for a loopback
// host), and the error says why.
func TestALoginNeverFallsBackToPlainHTTPForAnHTTPSRegistry(t *testing.T) {
	var plain int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		plain++
		w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.Scheme = "https"
	_, err := Transport(t.Context(), u, "user", "the-password", http.DefaultTransport, nil, nil)
	if err == nil || plain != 0 || strings.Contains(err.Error(), "the-password") {
		t.Fatalf("login over https to a plain HTTP server: %v, %d plain requests", err, plain)
	}
	t.Logf("refused: %v", err)
}
