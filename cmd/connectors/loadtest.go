package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/connectors-io/connectors/loadtest"
)

func newLoadtestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Measure the gateway next to direct access, nginx and squid (loopback only)",
		Long: "loadtest upstream serves a fast local API-server-like HTTPS upstream; loadtest run measures\n" +
			"scenarios (warm, connect, watch, list, exec) against targets (direct, gateway through a mounted\n" +
			"kubeconfig, and nginx and squid, which it generates and starts), interleaved, and reports the\n" +
			"gateway's ratios. make bench wires it all on a local control plane (hack/bench.sh).",
	}
	cmd.AddCommand(newLoadtestUpstreamCommand(), newLoadtestRunCommand())
	return cmd
}

func newLoadtestUpstreamCommand() *cobra.Command {
	var dir, listen string
	var watchInterval time.Duration
	cmd := &cobra.Command{
		Use:   "upstream --dir DIR",
		Short: "Serve the load test's upstream; write its address, CA and token into DIR",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			return loadtest.ServeUpstream(cmd.Context(), dir, listen, watchInterval, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the upstream's files ("+loadtest.UpstreamAddrFile+", "+loadtest.UpstreamCAFile+", "+loadtest.UpstreamCAKeyFile+", "+loadtest.UpstreamTokenFile+")")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address (loopback only)")
	cmd.Flags().DurationVar(&watchInterval, "watch-interval", time.Second, "how often every open watch gets an event")
	return cmd
}

type loadtestRunOptions struct {
	bench             loadtest.BenchOptions
	run               loadtest.Options
	scenarios         []string
	targets           []string
	jsonOut, markdown string
	quick             bool
}

func newLoadtestRunCommand() *cobra.Command {
	var o loadtestRunOptions
	cmd := &cobra.Command{
		Use:   "run --upstream-dir DIR [--kubeconfig MOUNTED] [--scenarios …] [--targets …]",
		Short: "Run scenarios against targets, interleaved; print a table (and JSON or Markdown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.bench.Kubeconfig == "" {
				o.bench.Kubeconfig = os.Getenv("KUBECONFIG")
			}
			o.bench.Targets = o.targets
			o.bench.Progress = cmd.ErrOrStderr()
			o.run.Progress = cmd.ErrOrStderr()
			o.bench.Cases = loadtest.DefaultCases(o.scenarios, o.run, o.quick)
			results, err := loadtest.RunBench(cmd.Context(), o.bench)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			loadtest.Table(out, results)
			if o.jsonOut != "" {
				b, err := json.MarshalIndent(results, "", "  ")
				if err != nil {
					return fmt.Errorf("encode the results: %w", err)
				}
				if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
					return fmt.Errorf("write %s: %w", o.jsonOut, err)
				}
			}
			if o.markdown != "" {
				var md strings.Builder
				loadtest.Markdown(&md, results)
				if err := os.WriteFile(o.markdown, []byte(md.String()), 0o644); err != nil {
					return fmt.Errorf("write %s: %w", o.markdown, err)
				}
			}
			if len(results) > 0 {
				_, err = fmt.Fprintln(out, loadtest.QuickLine(results, results[0].Case))
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.bench.UpstreamDir, "upstream-dir", "", "the directory of a running `connectors loadtest upstream`")
	fs.StringVar(&o.bench.Kubeconfig, "kubeconfig", "", "the mounted kubeconfig of a connector to the upstream (default $KUBECONFIG)")
	fs.IntVar(&o.bench.GatewayPID, "gateway-pid", 0, "the gateway's process, for its CPU and memory figures")
	fs.StringSliceVar(&o.targets, "targets", loadtest.AllTargets, "targets, in each round's order")
	fs.StringSliceVar(&o.scenarios, "scenarios", loadtest.Scenarios, "scenarios")
	fs.IntVar(&o.bench.Rounds, "rounds", 3, "interleaved rounds of each scenario")
	fs.BoolVar(&o.bench.InstallPeers, "install-peers", false, "install a missing nginx ("+loadtest.NginxPackage+") or squid ("+loadtest.SquidPackage+") with apt-get")
	fs.StringVar(&o.bench.PeerDir, "peer-dir", "", "directory for the peers' configuration and logs (default: temporary)")
	fs.BoolVar(&o.run.Open, "open", false, "open loop at --rate (default: closed loop with --workers)")
	fs.Float64Var(&o.run.Rate, "rate", 0, "open-loop requests per second")
	fs.IntVar(&o.run.Workers, "workers", 4, "closed-loop clients")
	fs.DurationVar(&o.run.Duration, "duration", 5*time.Second, "measured time of each run")
	fs.IntVar(&o.run.Streams, "streams", 1000, "watch streams")
	fs.BoolVar(&o.run.Reconnect, "reconnect", false, "watch again when the server ends a watch cleanly (as client-go does); counted, not an error")
	fs.Int64Var(&o.run.ListSize, "list-size", 100_000_000, "LIST size in bytes")
	fs.Int64Var(&o.run.ExecBytes, "exec-bytes", 64<<20, "bytes per exec stream")
	fs.StringVar(&o.bench.Fleet.AdminKubeconfig, "admin-kubeconfig", "", "an administrator of the gateway's cluster: the mixed scenario creates its connectors and pods with it")
	fs.IntVar(&o.bench.Fleet.Connectors, "mixed-connectors", 1000, "connectors of the mixed scenario")
	fs.IntVar(&o.bench.Fleet.Pods, "mixed-pods", 100, "pods (pod-bound tokens) of the mixed scenario")
	fs.IntVar(&o.bench.Fleet.Clients, "mixed-clients", 200, "tunnels of the mixed scenario, each a random token × connector pair")
	fs.BoolVar(&o.quick, "quick", false, "fewer cases (warm h2 and h1 only, one connect)")
	fs.StringVar(&o.jsonOut, "json", "", "also write every run as JSON to this file")
	fs.StringVar(&o.markdown, "markdown", "", "also write the report as Markdown to this file")
	return cmd
}
