package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startUpstream runs an Upstream for the test and returns a direct target.
func startUpstream(t *testing.T) (*Upstream, *Target) {
	t.Helper()
	ca, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, _, err := ca.Leaf("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUpstream(t.Context(), UpstreamOptions{Token: "the-token", Certificate: leaf, WatchInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = u.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	d, err := DirectTarget(u.URL(), ca.CertPEM, "the-token")
	if err != nil {
		t.Fatal(err)
	}
	return u, d
}

func TestTheUpstreamAnswersLikeAnAPIServerAndOnlyWithTheToken(t *testing.T) {
	u, direct := startUpstream(t)
	rt := direct.NewTransport(false, true)
	defer CloseIdle(rt)
	noToken := *direct
	noToken.bearer = ""
	anon := noToken.NewTransport(false, true)
	defer CloseIdle(anon)

	getBody := func(rt http.RoundTripper, path string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u.URL()+path, nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := getBody(rt, "/api/v1/namespaces/default/pods"); code != 200 || !json.Valid([]byte(body)) || !strings.Contains(body, `"PodList"`) {
		t.Errorf("pod list: %d %.80q", code, body)
	}
	if code, _ := getBody(anon, "/api/v1/namespaces/default/pods"); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
	if code, _ := getBody(anon, "/livez"); code != 200 {
		t.Errorf("/livez without the token: %d, want 200 (the class's liveness probe)", code)
	}
	code, body := getBody(rt, "/api/v1/namespaces/default/pods?size=1000000")
	if code != 200 || len(body) != 1000000 || !json.Valid([]byte(body)) {
		t.Errorf("a LIST of 1000000 bytes: %d, %d bytes, valid JSON %v", code, len(body), json.Valid([]byte(body)))
	}
	if code, _ := getBody(rt, "/api/v1/namespaces/default/pods?size=12"); code != http.StatusBadRequest {
		t.Errorf("a LIST smaller than one item: %d, want 400", code)
	}

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u.URL()+"/api/v1/namespaces/default/pods?watch=1", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	_ = resp.Body.Close()
	ts, ok := eventTime(line)
	if err != nil || !ok || time.Since(time.Unix(0, ts)) > 5*time.Second {
		t.Errorf("a watch event %q (%v): want one with its write time", line, err)
	}
}

func TestTheUpstreamRefusesToListenBeyondLoopback(t *testing.T) {
	_, err := NewUpstream(t.Context(), UpstreamOptions{Listen: "0.0.0.0:0", Token: "x"})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("got %v, want a refusal naming loopback", err)
	}
}

func TestEveryAddressOutsideLoopbackIsRefused(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:443", true}, {"[::1]:443", true}, {"localhost:80", true}, {"127.9.9.9", true},
		{"10.0.0.1:443", false}, {"192.168.1.100:6443", false}, {"example.com:443", false}, {"[::ffff:10.0.0.1]:1", false}, {"0.0.0.0:80", false},
	} {
		if err := RequireLoopback(tt.addr); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
	if _, err := DirectTarget("https://10.1.2.3:6443", nil, "x"); err == nil {
		t.Error("a direct target outside loopback was accepted")
	}
}

func TestEveryScenarioRunsAgainstTheDirectTarget(t *testing.T) {
	_, direct := startUpstream(t)
	for _, o := range []Options{
		{Scenario: ScenarioWarm, Duration: 300 * time.Millisecond},
		{Scenario: ScenarioWarm, HTTP1: true, Duration: 300 * time.Millisecond},
		{Scenario: ScenarioConnect, Duration: 300 * time.Millisecond},
		{Scenario: ScenarioWatch, Streams: 5, Duration: 300 * time.Millisecond},
		{Scenario: ScenarioList, ListSize: 2_000_000, Duration: 300 * time.Millisecond},
		{Scenario: ScenarioExec, ExecBytes: 1 << 20, Duration: 300 * time.Millisecond},
		{Scenario: ScenarioExec, ExecProtocol: "SPDY/3.1", ExecBytes: 1 << 20, Duration: 300 * time.Millisecond},
		{Scenario: ScenarioMixed, Duration: 300 * time.Millisecond},
	} {
		t.Run(o.Scenario+" "+o.ExecProtocol, func(t *testing.T) {
			r, err := Run(t.Context(), direct, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Ops == 0 || r.Errors != 0 || r.Throughput <= 0 || r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 {
				t.Errorf("%+v: want ops, no errors, a throughput and ordered latencies", r)
			}
		})
	}
}

func TestTheOpenLoopKeepsItsRateAndCountsFromTheScheduledStart(t *testing.T) {
	_, direct := startUpstream(t)
	r, err := Run(t.Context(), direct, Options{Scenario: ScenarioWarm, Open: true, Rate: 200, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Loop != "open" || r.Ops < 150 || r.Ops > 210 {
		t.Errorf("%d requests at 200/s for 1 s (%s loop), want about 200", r.Ops, r.Loop)
	}
	if _, err := Run(t.Context(), direct, Options{Scenario: ScenarioWarm, Open: true}); err == nil {
		t.Error("an open loop without a rate was accepted")
	}
	if _, err := Run(t.Context(), direct, Options{Scenario: "flood"}); err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Errorf("an unknown scenario: %v", err)
	}
}

func TestRatiosPairRunsOfTheSameRoundAndTheReportShowsThem(t *testing.T) {
	results := []*Result{
		{Case: "warm h2", Round: 0, Target: "direct", Throughput: 1000, Unit: "req/s", Latency: Latency{P99: 1}},
		{Case: "warm h2", Round: 0, Target: "gateway", Throughput: 500, Unit: "req/s", Latency: Latency{P99: 3}, CPUPerOp: 100},
		{Case: "warm h2", Round: 0, Target: "nginx", Throughput: 400, Unit: "req/s", Latency: Latency{P99: 2}},
		{Case: "warm h2", Round: 1, Target: "direct", Throughput: 2000, Unit: "req/s", Latency: Latency{P99: 1}},
		{Case: "warm h2", Round: 1, Target: "gateway", Throughput: 800, Unit: "req/s", Latency: Latency{P99: 2}},
		{Case: "warm h2", Round: 1, Target: "nginx", Throughput: 1000, Unit: "req/s", Latency: Latency{P99: 2}},
	}
	rs := Ratios(results, "warm h2", "gateway", "direct", "nginx")
	if len(rs) != 2 || rs[0].Low != 0.4 || rs[0].High != 0.5 || rs[0].Median != 0.45 || rs[1].Low != 0.8 || rs[1].High != 1.25 {
		t.Errorf("ratios %+v: want direct 0.40–0.50 and nginx 0.80–1.25", rs)
	}
	var md strings.Builder
	Markdown(&md, results)
	for _, want := range []string{"#### warm h2", "| gateway |", "gateway ÷ direct **0.45× (0.40–0.50)**", "gateway ÷ nginx **1.02× (0.80–1.25)**"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, md.String())
		}
	}
	if got := QuickLine(results, "warm h2"); got != "warm gateway/direct=0.45 gateway/nginx=1.02" {
		t.Errorf("quick line %q", got)
	}
}

func TestTheGatewayTargetNeedsAConnectorsKubeconfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, proxy, server string) string {
		p := filepath.Join(dir, name)
		kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " + server + "\n    certificate-authority-data: \"\"\n" + proxy +
			"users:\n- name: u\n  user:\n    token: fake-token\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
		if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct{ name, file, want string }{
		{"no proxy-url", write("plain", "", "https://127.0.0.1:6443"), "no proxy-url"},
		{"a server outside loopback", write("far", "    proxy-url: http://ns%2Fc:tok@127.0.0.1:8080\n", "https://10.0.0.1:6443"), "not a loopback address"},
		{"a proxy outside loopback", write("farproxy", "    proxy-url: http://ns%2Fc:tok@10.0.0.2:8080\n", "https://127.0.0.1:6443"), "not a loopback address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := GatewayTarget(tt.file, 0); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestAWatchThatTheServerEndsCleanlyWatchesAgainOnlyWhenAskedTo(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One event, then the end of the watch (as a draining proxy ends one).
		_, _ = fmt.Fprintf(w, `{"type":"ADDED","object":{"metadata":{"resourceVersion":"%d"}}}`+"\n", time.Now().UnixNano())
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	d, err := DirectTarget(srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), "x")
	if err != nil {
		t.Fatal(err)
	}
	again, err := Run(t.Context(), d, Options{Scenario: ScenarioWatch, Streams: 3, Reconnect: true, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if again.Errors != 0 || again.Reconnects < 3 {
		t.Errorf("with Reconnect: %d errors, %d reconnects; want none and at least 3", again.Errors, again.Reconnects)
	}
	ended, err := Run(t.Context(), d, Options{Scenario: ScenarioWatch, Streams: 3, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if ended.Errors == 0 || ended.Reconnects != 0 {
		t.Errorf("without Reconnect: %d errors, %d reconnects; want the ends counted as errors", ended.Errors, ended.Reconnects)
	}
}
