//go:build integration

package gateway_test

import (
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connectors-io/connectors/gateway"
)

var ipv4 = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`)

func TestMetricsHaveBoundedLabelsAndNeverATokenAPodOrAnAddress(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := startGateway(t, func(o *gateway.Options) { o.Registerer = reg })
	ns := namespace(t, "metrics")
	up := newRecorder(t)
	recordingTo(t, e, ns, "rec", up, bearerSecret("secret"))
	const pod = "metered-workload"
	token, _ := cp.PodToken(t, ns, pod, "default")
	if resp, body := get(t, e.client(t, ns+"/rec", token), up.URL+"/api", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	e.connect(t, strings.TrimPrefix(up.URL, "https://"), ns+"/rec:not-a-token") // a refusal too

	var labels map[string]string
	waitFor(t, "connectors_gateway_requests_total", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "connectors_gateway_requests_total" && len(mf.GetMetric()) == 1 {
				labels = map[string]string{}
				for _, l := range mf.GetMetric()[0].GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				return true
			}
		}
		return false
	})
	want := map[string]string{"connector": ns + "/rec", "method": "read", "code": "2xx", "protocol": "h2"}
	if len(labels) != len(want) {
		t.Errorf("connectors_gateway_requests_total has labels %v, want exactly %v", labels, want)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("connectors_gateway_requests_total label %s = %q, want %q", k, labels[k], v)
		}
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				switch {
				case strings.Contains(v, string(token)):
					t.Errorf("%s{%s} holds the pod's token", mf.GetName(), l.GetName())
				case strings.Contains(v, pod):
					t.Errorf("%s{%s=%q} names the pod", mf.GetName(), l.GetName(), v)
				case ipv4.MatchString(v) || net.ParseIP(v) != nil || strings.Contains(v, "::1"):
					t.Errorf("%s{%s=%q} holds an IP address", mf.GetName(), l.GetName(), v)
				}
			}
		}
	}
}
