package loadtest

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

var discardLog = log.New(io.Discard, "", 0)

// UpstreamOptions configure Upstream.
type UpstreamOptions struct {
	// Listen is the TCP address; it must be a loopback address. Default
	// 127.0.0.1:0.
	Listen string
	// Token is the bearer token every request must carry (constant-time
	// compare). Required.
	Token string
	// Certificate is the serving certificate (see NewCA). Required.
	Certificate tls.Certificate
	// WatchInterval is how often every open watch gets an event. Default 1s
	// (1,000 watches: 1,000 events a second).
	WatchInterval time.Duration
	// Logger gets one line per failure to serve. Default: discard.
	Logger logr.Logger
}

// Upstream is a fast local HTTPS server that answers like the Kubernetes API
// server for the paths the scenarios use:
//
//	/livez, /readyz, /version, /api    small fixed answers (the k8s class probes)
//	/api/v1/namespaces/NS/pods         a pod list of about 0.6 KiB (JSON)
//	…/pods?watch=1                     a chunked watch: one event per WatchInterval,
//	                                   each carrying its write time in
//	                                   metadata.resourceVersion (Unix nanoseconds)
//	…/pods?size=N                      a LIST of N bytes, written in 32 KiB chunks
//	…/pods/P (GET, DELETE), …/pods (POST)  one pod (the mixed scenario's verbs)
//	…/pods/P/exec?bytes=N              Upgrade (websocket or SPDY/3.1): 101, then N
//	                                   bytes, then close
//
// Every path but /livez and /readyz needs "Authorization: Bearer <Token>".
type Upstream struct {
	opts     UpstreamOptions
	ln       net.Listener
	srv      *http.Server
	mu       sync.Mutex
	watchers map[chan struct{}]struct{}
}

// NewUpstream listens; Start serves.
func NewUpstream(ctx context.Context, o UpstreamOptions) (*Upstream, error) {
	if o.Token == "" {
		return nil, errors.New("upstream: a bearer token is required")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if err := RequireLoopback(o.Listen); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if o.WatchInterval <= 0 {
		o.WatchInterval = time.Second
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("upstream: listen: %w", err)
	}
	u := &Upstream{opts: o, ln: ln, watchers: map[chan struct{}]struct{}{}}
	u.srv = &http.Server{
		Handler:           u,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{o.Certificate}, NextProtos: []string{"h2", "http/1.1"}},
		ErrorLog:          discardLog,
	}
	return u, nil
}

// Addr is the listening address (host:port).
func (u *Upstream) Addr() string { return u.ln.Addr().String() }

// URL is https://Addr.
func (u *Upstream) URL() string { return "https://" + u.Addr() }

// Start serves until ctx ends, then closes every connection within a second.
func (u *Upstream) Start(ctx context.Context) error {
	done := make(chan struct{})
	go u.tick(ctx, done)
	errc := make(chan error, 1)
	go func() { errc <- u.srv.ServeTLS(u.ln, "", "") }()
	select {
	case err := <-errc:
		close(done)
		return fmt.Errorf("upstream: serve: %w", err)
	case <-ctx.Done():
	}
	close(done)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := u.srv.Shutdown(sctx); err != nil {
		_ = u.srv.Close()
	}
	return nil
}

// tick wakes every watch once per WatchInterval.
func (u *Upstream) tick(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(u.opts.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
		}
		u.mu.Lock()
		for w := range u.watchers {
			select {
			case w <- struct{}{}:
			default: // still writing the last one: skip, never block the others
			}
		}
		u.mu.Unlock()
	}
}

// Watchers is the number of open watch streams.
func (u *Upstream) Watchers() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.watchers)
}

const podListJSON = `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"12345"},"items":[` +
	`{"metadata":{"name":"loadtest-0","namespace":"default","uid":"6b1f9c1e-7d0c-4a8e-9f55-1f3c2d4e5a6b","resourceVersion":"12340","creationTimestamp":"2026-12-01T00:00:00Z","labels":{"app":"loadtest"}},` +
	`"spec":{"containers":[{"name":"main","image":"registry.example/loadtest:1.0","resources":{}}],"restartPolicy":"Always","serviceAccountName":"default","nodeName":"node-0"},` +
	`"status":{"phase":"Running","podIP":"10.0.0.10","startTime":"2026-12-01T00:00:00Z","conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-12-01T00:00:01Z"}],` +
	`"containerStatuses":[{"name":"main","ready":true,"restartCount":0,"image":"registry.example/loadtest:1.0","imageID":"","started":true,"state":{"running":{"startedAt":"2026-12-01T00:00:01Z"}}}]}}]}`

// podJSON is the one pod of podListJSON.
var podJSON = podListJSON[strings.Index(podListJSON, `"items":[`)+len(`"items":[`) : len(podListJSON)-2]

// listItem is one pod of a large LIST (the last one is written without the
// trailing comma).
const listItem = `{"metadata":{"name":"loadtest-item","namespace":"default","uid":"6b1f9c1e-7d0c-4a8e-9f55-1f3c2d4e5a6b","resourceVersion":"12340","labels":{"app":"loadtest"}},"spec":{"containers":[{"name":"main","image":"registry.example/loadtest:1.0"}]},"status":{"phase":"Running","podIP":"10.0.0.10"}},`

func (u *Upstream) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(u.opts.Token)) == 1
}

func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/livez", "/readyz", "/healthz":
		_, _ = io.WriteString(w, "ok")
		return
	}
	if !u.authorized(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
		return
	}
	q := r.URL.Query()
	switch {
	case r.URL.Path == "/version":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2-loadtest","platform":"linux/amd64"}`)
	case r.URL.Path == "/api":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1:6443"}]}`)
	case strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/") && strings.Contains(r.URL.Path, "/pods/") && !strings.HasSuffix(r.URL.Path, "/exec"):
		// One pod: read or delete.
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, podJSON)
	case strings.HasSuffix(r.URL.Path, "/pods") && r.Method == http.MethodPost:
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, podJSON)
	case strings.HasSuffix(r.URL.Path, "/exec"):
		u.serveExec(w, r, q.Get("bytes"))
	case strings.HasSuffix(r.URL.Path, "/pods") && q.Get("watch") != "":
		u.serveWatch(w, r)
	case strings.HasSuffix(r.URL.Path, "/pods") && q.Get("size") != "":
		u.serveList(w, q.Get("size"))
	case strings.HasSuffix(r.URL.Path, "/pods"):
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(podListJSON)))
		_, _ = io.WriteString(w, podListJSON)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
	}
}

// maxListSize bounds a LIST (10 GiB): a typo must not run for hours.
const maxListSize = 10 << 30

func (u *Upstream) serveList(w http.ResponseWriter, size string) {
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < int64(len(podListJSON)) || n > maxListSize {
		http.Error(w, fmt.Sprintf("size must be a byte count from %d to %d", len(podListJSON), int64(maxListSize)), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	head := `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"12345"},"items":[`
	tail := listItem[:len(listItem)-1] + "]}"
	body := n - int64(len(head)) - int64(len(tail))
	chunk := make([]byte, 0, 32<<10)
	for len(chunk)+len(listItem) <= cap(chunk) {
		chunk = append(chunk, listItem...)
	}
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	for body > 0 {
		c := chunk
		if int64(len(c)) > body {
			// Pad the rest with whitespace: still valid JSON.
			c = []byte(strings.Repeat(" ", int(body)))
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		body -= int64(len(c))
	}
	_, _ = io.WriteString(w, tail)
}

func (u *Upstream) serveWatch(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	wake := make(chan struct{}, 1)
	u.mu.Lock()
	u.watchers[wake] = struct{}{}
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.watchers, wake)
		u.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	buf := make([]byte, 0, 256)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		}
		buf = buf[:0]
		buf = append(buf, `{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"loadtest-0","namespace":"default","resourceVersion":"`...)
		buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
		buf = append(buf, "\"}}}\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		fl.Flush()
	}
}

// maxExecBytes bounds one exec stream (10 GiB).
const maxExecBytes = 10 << 30

func (u *Upstream) serveExec(w http.ResponseWriter, r *http.Request, size string) {
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || n > maxExecBytes {
		http.Error(w, "bytes must be a byte count up to 10 GiB", http.StatusBadRequest)
		return
	}
	proto := r.Header.Get("Upgrade")
	if proto == "" {
		http.Error(w, "exec needs an Upgrade (websocket or SPDY/3.1)", http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	conn, brw, err := rc.Hijack()
	if err != nil {
		http.Error(w, "cannot upgrade", http.StatusInternalServerError)
		return
	}
	defer func() { _ = conn.Close() }()
	_, _ = fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", proto)
	if err := brw.Flush(); err != nil {
		return
	}
	writeBytes(brw.Writer, n)
	_ = brw.Flush()
}

func writeBytes(w *bufio.Writer, n int64) {
	block := make([]byte, 32<<10)
	for i := range block {
		block[i] = 'x'
	}
	for n > 0 {
		c := block
		if int64(len(c)) > n {
			c = c[:n]
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		n -= int64(len(c))
	}
}
