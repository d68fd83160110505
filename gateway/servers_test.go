package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/http2"

	"github.com/connectors-io/connectors/internal/tlsconfig"
)

// logEntry is one call of a logger of recordedLogs.
type logEntry struct {
	level int  // V level of an Info; 0 for an Error
	error bool // logged with Error
	msg   string
	text  string // everything logged, for what must not be there
}

// recordedLogs is a logr sink that keeps every call, at all verbosities.
type recordedLogs struct {
	mu      sync.Mutex
	entries []logEntry
}

func (r *recordedLogs) logger() logr.Logger { return logr.New(&recordingSink{r: r}) }

func (r *recordedLogs) all() []logEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.entries)
}

func (r *recordedLogs) add(e logEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
}

type recordingSink struct {
	r      *recordedLogs
	values []any
}

func (s *recordingSink) Init(logr.RuntimeInfo)        {}
func (s *recordingSink) Enabled(int) bool             { return true }
func (s *recordingSink) WithName(string) logr.LogSink { return s }
func (s *recordingSink) WithValues(kv ...any) logr.LogSink {
	return &recordingSink{r: s.r, values: append(slices.Clone(s.values), kv...)}
}

func (s *recordingSink) Info(level int, msg string, kv ...any) {
	s.r.add(logEntry{level: level, msg: msg, text: fmt.Sprint(msg, s.values, kv)})
}

func (s *recordingSink) Error(err error, msg string, kv ...any) {
	s.r.add(logEntry{error: true, msg: msg, text: fmt.Sprint(msg, err, s.values, kv)})
}

// testGateway is a Gateway with what its servers need, logging into logs.
func testGateway(t *testing.T, logs *recordedLogs) *Gateway {
	t.Helper()
	g := &Gateway{opts: Options{IdleTimeout: time.Minute, MaxHeaderBytes: 32 << 10}, serverLog: newServerLog(logs.logger())}
	g.h2base = g.h2BaseServer()
	g.h2 = &http2.Server{}
	if err := http2.ConfigureServer(g.h2base, g.h2); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestEveryServerOfTheGatewayBoundsHeadersAndIdleConnectionsAndLogsToTheGatewaysLogger(t *testing.T) {
	g := testGateway(t, &recordedLogs{})
	for name, srv := range map[string]*http.Server{
		"the proxy listener":  g.proxyServer(),
		"the admin listener":  g.adminServer(),
		"an HTTP/1.1 tunnel":  g.tunnelServer(http.NotFoundHandler()),
		"the HTTP/2 tunnels'": g.h2base, // no header timeout: x/net/http2 has none to take (h2BaseServer)
	} {
		if (srv.ReadHeaderTimeout <= 0 && srv != g.h2base) || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 || srv.ErrorLog != g.serverLog {
			t.Errorf("%s: ReadHeaderTimeout %v, IdleTimeout %v, MaxHeaderBytes %d, ErrorLog ours %t; want all set",
				name, srv.ReadHeaderTimeout, srv.IdleTimeout, srv.MaxHeaderBytes, srv.ErrorLog == g.serverLog)
		}
	}
	c := tunnelTLS(&tls.Certificate{})
	if c.MinVersion != tls.VersionTLS12 || !slices.Equal(c.CipherSuites, tlsconfig.Suites()) {
		t.Errorf("the tunnels' TLS: MinVersion %x, suites %v; want the tlsconfig policy", c.MinVersion, c.CipherSuites)
	}
}

func TestAPanicInAHandlerOfATunnelIsLoggedAsAnErrorWithoutTheRequest(t *testing.T) {
	const secret = "Bearer do-not-log-me"
	panicking := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("the handler's bug") })
	for _, tt := range []struct {
		name  string
		serve func(g *Gateway, l net.Listener)
		tr    http.RoundTripper
	}{
		{
			name:  "HTTP/1.1",
			serve: func(g *Gateway, l net.Listener) { _ = g.tunnelServer(panicking).Serve(l) },
			tr:    &http.Transport{},
		},
		{
			name: "HTTP/2",
			serve: func(g *Gateway, l net.Listener) {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go g.h2.ServeConn(c, &http2.ServeConnOpts{Handler: panicking, BaseConfig: g.h2base})
				}
			},
			tr: &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs := &recordedLogs{}
			g := testGateway(t, logs)
			l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			go tt.serve(g, l)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+l.Addr().String()+"/?token=do-not-log-me", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", secret)
			if resp, err := tt.tr.RoundTrip(req); err == nil {
				_ = resp.Body.Close()
				t.Fatalf("got %d, want the connection or stream reset", resp.StatusCode)
			}
			// The server logs before it resets; give its goroutine a moment.
			var entries []logEntry
			for deadline := time.Now().Add(5 * time.Second); len(entries) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				entries = logs.all()
			}
			if len(entries) != 1 || !entries[0].error || !strings.Contains(entries[0].text, "the handler's bug") ||
				!strings.Contains(entries[0].text, "servers_test.go") {
				t.Fatalf("logged %+v, want one error with the panic and its stack", entries)
			}
			if strings.Contains(entries[0].text, "do-not-log-me") {
				t.Errorf("the panic's line has the request in it: %s", entries[0].text)
			}
		})
	}
}
