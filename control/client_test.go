package control_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/tokens"
)

func TestTheKubeconfigClientDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			elsewhere.Add(1)
		}
		_, _ = w.Write([]byte("apiVersion: v1\nkind: Config\n"))
	}))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirecting.Close()

	_, err := control.Fetch(t.Context(), control.FetchOptions{
		ControlURL: redirecting.URL, Namespace: "ns", Connector: "c",
		Token: tokens.Token("not-a-real-token"), Client: &http.Client{},
	})
	if err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("err = %v, want the 302 reported as an error", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests with the token", n)
	}
}
