package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency percentiles, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Result is one run of one scenario against one target.
type Result struct {
	Case     string `json:"case,omitempty"` // the bench case's name
	Round    int    `json:"round"`          // the bench round (0-based)
	Target   string `json:"target"`
	Scenario string `json:"scenario"`
	Protocol string `json:"protocol"` // h2 or h1 between the client and the target
	Loop     string `json:"loop"`     // closed or open
	Workers  int    `json:"workers"`
	Streams  int    `json:"streams,omitempty"` // watch
	// Reconnects counts the watches that ended cleanly and watched again
	// (Options.Reconnect).
	Reconnects int64 `json:"reconnects,omitempty"`
	// Ops is what was counted: requests, events (watch), iterations (list, exec).
	Ops        int64            `json:"ops"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"errorKinds,omitempty"`
	Seconds    float64          `json:"seconds"`
	// Throughput is Ops per second, or MB/s for list and exec (Unit says which).
	Throughput float64 `json:"throughput"`
	Unit       string  `json:"unit"`
	Latency    Latency `json:"latencyMs"`
	// The proxy process's (none for direct): CPU seconds used during the
	// run, CPU µs per op (per MB for list and exec), peak RSS during the run
	// and its growth over the RSS before it.
	CPUSeconds   float64 `json:"cpuSeconds,omitempty"`
	CPUPerOp     float64 `json:"cpuMicrosPerOp,omitempty"`
	PeakRSSMiB   float64 `json:"peakRssMiB,omitempty"`
	RSSGrowthMiB float64 `json:"rssGrowthMiB,omitempty"`
	// PeakIsLifetime: the peak could not be reset, it is the process's.
	PeakIsLifetime bool `json:"peakIsLifetime,omitempty"`
}

// recorder collects latencies and errors of one run.
type recorder struct {
	mu         sync.Mutex
	hist       *hdrhistogram.Histogram
	ops        atomic.Int64
	bytes      atomic.Int64
	errs       map[string]int64
	nerrs      atomic.Int64
	issued     atomic.Int64
	reconnects atomic.Int64 // watches that ended cleanly and watched again
}

func newRecorder() *recorder {
	// 1 µs to 10 min, 3 significant digits.
	return &recorder{hist: hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3), errs: map[string]int64{}}
}

func (r *recorder) ok(d time.Duration) {
	r.ops.Add(1)
	us := max(int64(d/time.Microsecond), 1)
	r.mu.Lock()
	_ = r.hist.RecordValue(min(us, r.hist.HighestTrackableValue()))
	r.mu.Unlock()
}

func (r *recorder) fail(err error) {
	r.nerrs.Add(1)
	kind := errorKind(err)
	r.mu.Lock()
	r.errs[kind]++
	r.mu.Unlock()
}

// errorKind is a short class of the error, never its text (which may name
// addresses or carry an upstream's words).
func errorKind(err error) string {
	var st statusError
	var ne net.Error
	switch {
	case errors.As(err, &st):
		return "http " + strconv.Itoa(int(st))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, errStreamEnded):
		return "stream ended"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	case strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		return "tls"
	default:
		return "other"
	}
}

type statusError int

func (s statusError) Error() string { return "status " + strconv.Itoa(int(s)) }

var errStreamEnded = errors.New("the stream ended early")

func (r *recorder) latency() Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		P50: ms(r.hist.ValueAtQuantile(50)), P90: ms(r.hist.ValueAtQuantile(90)),
		P99: ms(r.hist.ValueAtQuantile(99)), P999: ms(r.hist.ValueAtQuantile(99.9)), Max: ms(r.hist.Max()),
	}
}

// Run runs one scenario against one target and returns its result; ctx
// ending stops it early (the result covers what ran).
func Run(ctx context.Context, t *Target, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := requireLoopbackURL(t.BaseURL); err != nil {
		return nil, err
	}
	res := &Result{Target: t.Name, Scenario: o.Scenario, Protocol: "h2", Loop: "closed", Workers: o.Workers, Unit: "req/s"}
	if o.HTTP1 || !t.h2 || o.Scenario == ScenarioExec {
		res.Protocol = "h1"
	}
	if o.Open {
		res.Loop = "open"
	}
	reset := resetPeak(t.PID, t.Peer)
	before := measure(t.PID, t.Peer)
	rec := newRecorder()
	start := time.Now()
	var err error
	switch o.Scenario {
	case ScenarioWarm:
		rt := t.NewTransport(o.HTTP1, true)
		defer CloseIdle(rt)
		err = requests(ctx, o, rec, func(ctx context.Context) error { return get(ctx, rt, t.BaseURL+o.Path) })
	case ScenarioConnect:
		err = requests(ctx, o, rec, func(ctx context.Context) error {
			rt := t.NewTransport(o.HTTP1, false)
			defer CloseIdle(rt)
			return get(ctx, rt, t.BaseURL+o.Path)
		})
	case ScenarioWatch:
		res.Unit, res.Streams = "events/s", o.Streams
		start, err = watches(ctx, t, o, rec)
		res.Reconnects = rec.reconnects.Load()
	case ScenarioMixed:
		clients := t.fleet
		if len(clients) == 0 {
			clients = []*Target{t}
		}
		rts := make([]http.RoundTripper, len(clients))
		for i, c := range clients {
			rts[i] = c.NewTransport(o.HTTP1, true)
			defer CloseIdle(rts[i])
		}
		var next atomic.Uint64
		err = requests(ctx, o, rec, func(ctx context.Context) error {
			return mixedRequest(ctx, rts[next.Add(1)%uint64(len(rts))], t.BaseURL)
		})
	case ScenarioList:
		res.Unit = "MB/s"
		o.Workers, res.Workers = 1, 1
		rt := t.NewTransport(o.HTTP1, true)
		defer CloseIdle(rt)
		err = requests(ctx, o, rec, func(ctx context.Context) error {
			n, err := getCount(ctx, rt, t.BaseURL+o.Path+"?size="+strconv.FormatInt(o.ListSize, 10))
			rec.bytes.Add(n)
			return err
		})
	case ScenarioExec:
		res.Unit = "MB/s"
		o.Workers, res.Workers = 1, 1
		rt := t.NewTransport(true, true)
		defer CloseIdle(rt)
		err = requests(ctx, o, rec, func(ctx context.Context) error {
			n, err := execStream(ctx, rt, t.BaseURL, o)
			rec.bytes.Add(n)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	after := measure(t.PID, t.Peer)
	res.Ops, res.Errors, res.Seconds = rec.ops.Load(), rec.nerrs.Load(), elapsed.Seconds()
	if len(rec.errs) > 0 {
		res.ErrorKinds = rec.errs
	}
	res.Latency = rec.latency()
	per := float64(res.Ops)
	switch res.Unit {
	case "MB/s":
		mb := float64(rec.bytes.Load()) / 1e6
		res.Throughput, per = mb/res.Seconds, mb
	default:
		res.Throughput = float64(res.Ops) / res.Seconds
	}
	if t.PID > 0 {
		res.CPUSeconds = float64(after.cpuTicks-before.cpuTicks) / clockTicks
		if per > 0 {
			res.CPUPerOp = res.CPUSeconds * 1e6 / per
		}
		res.PeakRSSMiB = float64(after.peakKiB) / 1024
		res.RSSGrowthMiB = float64(max(after.peakKiB-before.rssKiB, 0)) / 1024
		res.PeakIsLifetime = !reset
	}
	return res, nil
}

// requests runs do in a closed loop (Workers) or an open loop (Rate) until
// Duration, MaxRequests or ctx.
func requests(ctx context.Context, o Options, rec *recorder, do func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	stop := progress(ctx, o, rec)
	defer stop()
	var wg sync.WaitGroup
	one := func(due time.Time) {
		if err := do(ctx); err != nil {
			if ctx.Err() == nil {
				rec.fail(err)
			}
			return
		}
		rec.ok(time.Since(due))
	}
	if !o.Open {
		for range o.Workers {
			wg.Go(func() {
				for ctx.Err() == nil && rec.issued.Add(1) <= o.MaxRequests {
					one(time.Now())
				}
			})
		}
		wg.Wait()
		return nil
	}
	slots := make(chan struct{}, o.Workers*64)
	interval := time.Duration(float64(time.Second) / o.Rate)
	start := time.Now()
	for i := int64(0); i < o.MaxRequests; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}: // a full set of slots delays the start, not the latency's origin
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			one(due)
		})
	}
	wg.Wait()
	return nil
}

func progress(ctx context.Context, o Options, rec *recorder) (stop func()) {
	if o.Progress == nil || o.Duration < 10*time.Second {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
				_, _ = fmt.Fprintf(o.Progress, "  %s: %4.0fs %d ok %d errors\n", o.Scenario, time.Since(start).Seconds(), rec.ops.Load(), rec.nerrs.Load())
			}
		}
	}()
	return func() { close(done) }
}

func get(ctx context.Context, rt http.RoundTripper, u string) error {
	_, err := getCount(ctx, rt, u)
	return err
}

// getCount GETs u and reads the whole answer, which must be 200.
func getCount(ctx context.Context, rt http.RoundTripper, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return n, statusError(resp.StatusCode)
	}
	return n, err
}

// execStream opens one upgraded stream and reads ExecBytes from it.
func execStream(ctx context.Context, rt http.RoundTripper, base string, o Options) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/namespaces/default/pods/loadtest-0/exec?bytes="+strconv.FormatInt(o.ExecBytes, 10), nil)
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", o.ExecProtocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return 0, statusError(resp.StatusCode)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n != o.ExecBytes {
		err = errStreamEnded
	}
	return n, err
}

// watches opens Streams watches, waits until the upstream writes to all of
// them, then records each event's latency for Duration; it returns when the
// measured part started.
func watches(ctx context.Context, t *Target, o Options, rec *recorder) (time.Time, error) {
	rt := t.NewTransport(o.HTTP1, true)
	defer CloseIdle(rt)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var measuring atomic.Bool
	var opened, failedOpen atomic.Int64
	var wg sync.WaitGroup
	// watch runs one watch until it ends; again says whether it ended
	// cleanly and may watch again.
	watch := func(first bool) (again bool) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.BaseURL+o.Path+"?watch=1", nil)
		if err != nil {
			return false
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			if first {
				failedOpen.Add(1)
			}
			if ctx.Err() == nil {
				rec.fail(err)
			}
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			if first {
				failedOpen.Add(1)
			}
			rec.fail(statusError(resp.StatusCode))
			return false
		}
		if first {
			opened.Add(1)
		}
		br := bufio.NewReaderSize(resp.Body, 4096)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				switch {
				case ctx.Err() != nil:
				case o.Reconnect && errors.Is(err, io.EOF):
					rec.reconnects.Add(1)
					return true
				default:
					rec.fail(errStreamEnded)
				}
				return false
			}
			now := time.Now()
			if !measuring.Load() {
				continue
			}
			if ts, ok := eventTime(line); ok {
				rec.ok(now.Sub(time.Unix(0, ts)))
			}
		}
	}
	for range o.Streams {
		wg.Go(func() {
			for first := true; watch(first) && ctx.Err() == nil; first = false {
			}
		})
	}
	// Wait until every stream is open (or failed), at most a minute.
	deadline := time.Now().Add(time.Minute)
	for opened.Load()+failedOpen.Load() < int64(o.Streams) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if opened.Load() == 0 {
		cancel()
		wg.Wait()
		return time.Now(), nil
	}
	time.Sleep(200 * time.Millisecond) // let the first events drain
	start := time.Now()
	measuring.Store(true)
	select {
	case <-ctx.Done():
	case <-time.After(o.Duration):
	}
	measuring.Store(false)
	cancel()
	wg.Wait()
	return start, nil
}

var rvKey = []byte(`"resourceVersion":"`)

func eventTime(line []byte) (int64, bool) {
	i := bytes.Index(line, rvKey)
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(rvKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}
