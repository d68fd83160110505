package loadtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Case is one scenario configuration of a bench, with its name in the
// report (e.g. "warm h2").
type Case struct {
	Name    string
	Options Options
}

// Bench runs every case against every target, interleaved (round 1: A B C,
// round 2: A B C, …), and returns every run's result in order.
func Bench(ctx context.Context, targets []*Target, cases []Case, rounds int, progress io.Writer) ([]*Result, error) {
	if rounds <= 0 {
		rounds = 1
	}
	var out []*Result
	for _, c := range cases {
		for round := range rounds {
			for _, t := range targets {
				if err := ctx.Err(); err != nil {
					return out, fmt.Errorf("bench: %w", err)
				}
				r, err := Run(ctx, t, c.Options)
				if err != nil {
					return out, fmt.Errorf("bench %s against %s: %w", c.Name, t.Name, err)
				}
				r.Case, r.Round = c.Name, round
				if progress != nil {
					_, _ = fmt.Fprintf(progress, "%-12s %-8s round %d: %s\n", c.Name, t.Name, round+1, r.Summary())
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Summary is one line of a result.
func (r *Result) Summary() string {
	s := fmt.Sprintf("%9.1f %-8s p50 %.2f ms p99 %.2f ms", r.Throughput, r.Unit, r.Latency.P50, r.Latency.P99)
	if r.Errors > 0 {
		s += fmt.Sprintf(" errors %d %v", r.Errors, r.ErrorKinds)
	}
	if r.CPUSeconds > 0 {
		s += fmt.Sprintf(" proxy cpu %.0f µs/op rss peak %.1f MiB (+%.1f)", r.CPUPerOp, r.PeakRSSMiB, r.RSSGrowthMiB)
	}
	return s
}

// Ratio is a throughput ratio between two targets: the median of the
// per-round ratios (neighbours in time) and their range.
type Ratio struct {
	Of, To        string
	Median        float64
	Low, High     float64
	Rounds        int
	LatencyP99Add float64 // median p99 of Of minus that of To, ms
}

func (r Ratio) String() string {
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", r.Median, r.Low, r.High)
}

// Ratios compares target "of" with each of the others in one case.
func Ratios(results []*Result, caseName, of string, to ...string) []Ratio {
	var out []Ratio
	for _, t := range to {
		var rs, p99 []float64
		for _, a := range results {
			if a.Case != caseName || a.Target != of {
				continue
			}
			for _, b := range results {
				if b.Case == caseName && b.Target == t && b.Round == a.Round && b.Throughput > 0 {
					rs = append(rs, a.Throughput/b.Throughput)
					p99 = append(p99, a.Latency.P99-b.Latency.P99)
				}
			}
		}
		if len(rs) == 0 {
			continue
		}
		sorted := slices.Clone(rs)
		slices.Sort(sorted)
		out = append(out, Ratio{Of: of, To: t, Median: median(rs), Low: sorted[0], High: sorted[len(sorted)-1], Rounds: len(rs), LatencyP99Add: median(p99)})
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Markdown writes the bench's results: per case a row per target (medians
// over the rounds) and the gateway's ratios.
func Markdown(w io.Writer, results []*Result) {
	var cases, targets []string
	for _, r := range results {
		if !slices.Contains(cases, r.Case) {
			cases = append(cases, r.Case)
		}
		if !slices.Contains(targets, r.Target) {
			targets = append(targets, r.Target)
		}
	}
	for _, c := range cases {
		var rows []*Result
		for _, r := range results {
			if r.Case == c {
				rows = append(rows, r)
			}
		}
		first := rows[0]
		switch first.Scenario {
		case ScenarioWatch:
			_, _ = fmt.Fprintf(w, "#### %s (%d streams; RSS growth per stream in the last column)\n\n", c, first.Streams)
		case ScenarioList, ScenarioExec:
			_, _ = fmt.Fprintf(w, "#### %s (one at a time)\n\n", c)
		default:
			_, _ = fmt.Fprintf(w, "#### %s (%s loop, %d workers)\n\n", c, first.Loop, first.Workers)
		}
		_, _ = fmt.Fprintf(w, "| target | protocol | throughput (median) | p50 ms | p99 ms | p99.9 ms | errors | proxy CPU per op | proxy peak RSS (growth) |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, t := range targets {
			var th, p50, p99, p999, cpu, peak, grow []float64
			var errs int64
			proto := ""
			for _, r := range rows {
				if r.Target != t {
					continue
				}
				proto = r.Protocol
				th, p50, p99, p999 = append(th, r.Throughput), append(p50, r.Latency.P50), append(p99, r.Latency.P99), append(p999, r.Latency.P999)
				cpu, peak, grow = append(cpu, r.CPUPerOp), append(peak, r.PeakRSSMiB), append(grow, r.RSSGrowthMiB)
				errs += r.Errors
			}
			if len(th) == 0 {
				continue
			}
			cpuCell, rssCell := "—", "—"
			if median(cpu) > 0 {
				unit := "µs/op"
				if first.Unit == "MB/s" {
					unit = "µs/MB"
				}
				cpuCell = fmt.Sprintf("%.0f %s", median(cpu), unit)
				rssCell = fmt.Sprintf("%.1f MiB (+%.1f)", median(peak), median(grow))
				if first.Scenario == ScenarioWatch && first.Streams > 0 {
					rssCell += fmt.Sprintf(", %.1f KiB per stream", median(grow)*1024/float64(first.Streams))
				}
			}
			_, _ = fmt.Fprintf(w, "| %s | %s | %.1f %s | %.2f | %.2f | %.2f | %d | %s | %s |\n", t, proto, median(th), first.Unit, median(p50), median(p99), median(p999), errs, cpuCell, rssCell)
		}
		var others []string
		for _, t := range targets {
			if t != "gateway" {
				others = append(others, t)
			}
		}
		var parts []string
		for _, r := range Ratios(results, c, "gateway", others...) {
			parts = append(parts, fmt.Sprintf("gateway ÷ %s **%s** (p99 %+.2f ms)", r.To, r, r.LatencyP99Add))
		}
		if len(parts) > 0 {
			_, _ = fmt.Fprintf(w, "\nThroughput ratios (median of %d interleaved rounds, range): %s.\n", len(rows)/len(targets), strings.Join(parts, "; "))
		}
		_, _ = fmt.Fprintln(w)
	}
}

// QuickLine is make bench-quick's last line: the scenario of the case and
// the gateway's ratios to direct and nginx.
func QuickLine(results []*Result, caseName string) string {
	line := strings.Fields(caseName + " ?")[0]
	for _, r := range Ratios(results, caseName, "gateway", "direct", "nginx") {
		line += fmt.Sprintf(" gateway/%s=%.2f", r.To, r.Median)
	}
	return line
}

// DefaultCases are the cases of the given scenarios: warm over HTTP/2 and
// HTTP/1.1 inside the connection, connect, watch, list, and exec over
// WebSocket and SPDY/3.1. quick keeps warm (HTTP/2) and connect.
func DefaultCases(scenarios []string, base Options, quick bool) []Case {
	var out []Case
	add := func(name string, mutate func(*Options)) {
		o := base
		mutate(&o)
		out = append(out, Case{Name: name, Options: o})
	}
	for _, s := range scenarios {
		switch s {
		case ScenarioWarm:
			add("warm h2", func(o *Options) { o.Scenario = s })
			if !quick {
				add("warm h1", func(o *Options) { o.Scenario, o.HTTP1 = s, true })
			}
		case ScenarioConnect:
			add("connect", func(o *Options) { o.Scenario = s })
		case ScenarioWatch, ScenarioList, ScenarioMixed:
			if !quick {
				add(s, func(o *Options) { o.Scenario = s })
			}
		case ScenarioExec:
			if !quick {
				add("exec websocket", func(o *Options) { o.Scenario, o.ExecProtocol = s, "websocket" })
				add("exec spdy", func(o *Options) { o.Scenario, o.ExecProtocol = s, "SPDY/3.1" })
			}
		default:
			add(s, func(o *Options) { o.Scenario = s }) // Run names the unknown scenario
		}
	}
	return out
}

// Table writes the results as the Markdown report (a table per case).
func Table(w io.Writer, results []*Result) { Markdown(w, results) }
