//go:build integration

package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectors-io/connectors/gateway"
	"github.com/connectors-io/connectors/tokens"
)

func TestOnlyPodBoundTokensOfBoundedLifetimeAreTakenByDefault(t *testing.T) {
	e := startGateway(t, nil)
	ns := namespace(t, "policy")
	up := newRecorder(t)
	recordingConnector(t, e, ns, "rec", up, "secret", true)
	target := strings.TrimPrefix(up.URL, "https://")
	m, err := tokens.NewMinter(tokens.MinterOptions{Client: cp.Clientset})
	if err != nil {
		t.Fatal(err)
	}
	pod := cp.CreatePod(t, ns, "long", "default")

	unbound, _, err := m.MintForServiceAccount(t.Context(), ns, "default", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	yearLong, _, err := m.MintForPod(t.Context(), tokens.PodRef{Namespace: ns, Name: pod.Name, UID: pod.UID, ServiceAccount: "default"}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		token tokens.Token
		want  string
	}{
		{"an unbound token (of the token API, outside pods) is 407", unbound, "it is not bound to a pod"},
		{"a pod-bound token valid for a year is 407", yearLong, "a token may live at most 24h0m0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.connect(t, target, ns+"/rec:"+string(tt.token))
			if resp.StatusCode != http.StatusProxyAuthRequired || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %q, want 407 saying %q", resp.StatusCode, body, tt.want)
			}
			if strings.Contains(body, string(tt.token)) {
				t.Error("the answer echoes the token")
			}
		})
	}
	waitFor(t, "the audit lines of the refusals", func() bool {
		return strings.Count(e.logs.Text(), `"reason"="proxy token refused: `) >= 2
	})
	if strings.Contains(e.logs.Text(), string(unbound)) || strings.Contains(e.logs.Text(), string(yearLong)) {
		t.Error("a refused token is in the log")
	}
	t.Run("a pod-bound token of the usual lifetime is taken", func(t *testing.T) {
		token, _ := cp.PodToken(t, ns, "job", "default")
		if resp, body := e.connect(t, target, ns+"/rec:"+string(token)); resp.StatusCode != http.StatusOK {
			t.Errorf("got %d %q, want 200", resp.StatusCode, body)
		}
	})
}

func TestUnboundTokensAreTakenOnlyWhenAllowedAndShortLived(t *testing.T) {
	e := startGateway(t, func(o *gateway.Options) { o.AllowUnboundTokens = true })
	ns := namespace(t, "unbound")
	up := newRecorder(t)
	recordingConnector(t, e, ns, "rec", up, "secret", true)
	target := strings.TrimPrefix(up.URL, "https://")
	m, err := tokens.NewMinter(tokens.MinterOptions{Client: cp.Clientset})
	if err != nil {
		t.Fatal(err)
	}
	cp.CreatePod(t, ns, "sa-holder", "default") // the namespace's default ServiceAccount exists
	hour, _, err := m.MintForServiceAccount(t.Context(), ns, "default", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	day, _, err := m.MintForServiceAccount(t.Context(), ns, "default", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := e.connect(t, target, ns+"/rec:"+string(hour)); resp.StatusCode != http.StatusOK {
		t.Errorf("an unbound one-hour token: %d %q, want 200", resp.StatusCode, body)
	}
	if resp, body := e.connect(t, target, ns+"/rec:"+string(day)); resp.StatusCode != http.StatusProxyAuthRequired || !strings.Contains(body, "an unbound token may live at most 1h0m0s") {
		t.Errorf("an unbound one-day token: %d %q, want 407 naming the limit", resp.StatusCode, body)
	}
}
