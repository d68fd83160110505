package loadtest

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Scenarios.
const (
	ScenarioWarm    = "warm"    // keep-alive GETs of a small object through established connections
	ScenarioConnect = "connect" // a new connection (CONNECT + TLS through a proxy) and one GET per iteration
	ScenarioWatch   = "watch"   // Streams concurrent watches; latency from the upstream's write to the client
	ScenarioList    = "list"    // one LIST of ListSize bytes per iteration; throughput and the proxy's RSS growth
	ScenarioExec    = "exec"    // an upgraded stream (WebSocket or SPDY/3.1) carrying ExecBytes per iteration
	ScenarioMixed   = "mixed"   // a verb mix over many connectors × many pod tokens (the gateway; one identity elsewhere)
)

// Scenarios lists every scenario, in the order make bench runs them.
var Scenarios = []string{ScenarioWarm, ScenarioConnect, ScenarioWatch, ScenarioList, ScenarioExec, ScenarioMixed}

// Options configure one run of one scenario against one target.
type Options struct {
	// Scenario is one of Scenarios. Required.
	Scenario string
	// Open selects the open loop: requests start at Rate per second whatever
	// the answers do, and latency counts from each request's scheduled start
	// (no coordinated omission). Otherwise Workers loop closed.
	Open bool
	// Rate is the open loop's requests per second. Required when Open.
	Rate float64
	// Workers is the number of closed-loop clients, and the open loop's bound
	// on requests in flight (×64). Default 4.
	Workers int
	// Duration of the measured part of the run. Default 5 s; at most 1 h.
	Duration time.Duration
	// MaxRequests bounds the requests of one run. Default 10,000,000.
	MaxRequests int64
	// HTTP1 uses HTTP/1.1 to the target (default HTTP/2 where it offers it).
	HTTP1 bool
	// Path of warm and connect requests. Default /api/v1/namespaces/default/pods.
	Path string
	// Streams is the number of watches. Default 100; at most 20,000.
	Streams int
	// Reconnect makes a watch that the server ends cleanly (the end of its
	// body, as a shutting-down proxy or API server ends one) watch again,
	// as client-go's reflectors do; Result.Reconnects counts them. Without
	// it, and for any other end (a reset, a cut connection), an ended
	// stream is an error.
	Reconnect bool
	// ListSize is the LIST's size in bytes. Default 100 MB.
	ListSize int64
	// ExecBytes is what one exec stream carries. Default 64 MiB.
	ExecBytes int64
	// ExecProtocol is the Upgrade token: "websocket" (default) or "SPDY/3.1".
	ExecProtocol string
	// Progress gets a line every 5 s of a run (nil: none).
	Progress io.Writer
}

func (o *Options) defaults() error {
	known := false
	for _, s := range Scenarios {
		known = known || s == o.Scenario
	}
	if !known {
		return fmt.Errorf("unknown scenario %q (one of %v)", o.Scenario, Scenarios)
	}
	if o.Open && o.Rate <= 0 {
		return errors.New("the open loop needs a rate above 0")
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Duration > time.Hour {
		return errors.New("a run lasts at most an hour")
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = 10_000_000
	}
	if o.Path == "" {
		o.Path = "/api/v1/namespaces/default/pods"
	}
	if o.Streams <= 0 {
		o.Streams = 100
	}
	if o.Streams > 20_000 {
		return errors.New("at most 20,000 watch streams")
	}
	if o.ListSize <= 0 {
		o.ListSize = 100_000_000
	}
	if o.ExecBytes <= 0 {
		o.ExecBytes = 64 << 20
	}
	switch o.ExecProtocol {
	case "":
		o.ExecProtocol = "websocket"
	case "websocket", "SPDY/3.1":
	default:
		return fmt.Errorf("exec protocol %q: websocket or SPDY/3.1", o.ExecProtocol)
	}
	return nil
}
