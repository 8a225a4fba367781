package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"dcon/internal/bench"
)

// runBench runs `dcon bench`: the end-to-end experiment of internal/bench,
// a table on stdout and, with --json, the same figures as JSON.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg         bench.Config
		scenarios   string
		scale       string
		jsonFile    string
		serverFlags string
		cpuProfile  string
	)
	fs := newFlagSet("bench", "Run the end-to-end benchmark: start a dcon server (fresh data directory, fsync and signing on)\n"+
		"or use --server, start receivers on 127.0.0.1, drive load, and report each scenario beside its raw ceiling.\n"+
		"Scenarios: "+strings.Join(bench.Scenarios(), ", ")+".", stderr)
	fs.StringVar(&cfg.Server, "server", "", "`URL` of a running dcon (started with --dev) to measure instead of starting one per scenario")
	fs.StringVar(&scenarios, "scenario", "", "comma-separated `list` of scenarios to run (default all)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "length of the timed phases: the latency scenario's; the others load for half of it")
	fs.IntVar(&cfg.Events, "events", 1_000_000, "events that queue for the down endpoint in the backlog scenario")
	fs.StringVar(&scale, "connectors-scale", "full", "connectors scenario: full (10,000 connectors over 1,000 projects) or small (100 over 10)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "publishers (and raw-ceiling posters) at once")
	fs.IntVar(&cfg.Rate, "rate", 1000, "events per second of the latency scenario")
	fs.IntVar(&cfg.Window, "window", 50_000, "deliveries outstanding at most while a scenario publishes as fast as it can")
	fs.DurationVar(&cfg.DrainDeadline, "drain-deadline", 15*time.Minute, "longest wait for deliveries after a phase")
	fs.BoolVar(&cfg.TLS, "tls", false, "serve the receivers over HTTPS (a fresh self-signed certificate, given to the server as --ca-file) instead of http:// with --dev")
	fs.StringVar(&jsonFile, "json", "", "also write the figures as JSON to `file`")
	fs.StringVar(&serverFlags, "server-flags", "", "extra `flags` for the dcon serve the bench starts, space-separated (e.g. \"--retry-max 1s\")")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench's own process (publishers, receivers) to this `file`")
	fs.BoolVar(&cfg.NATS, "nats", false, "run the scenarios three times: on Pebble, on one NATS JetStream server and on a cluster of three (3 replicas),\n"+
		"the NATS servers in this process on 127.0.0.1 (scenarios: "+strings.Join(bench.NATSScenarios(), ", ")+", the default)")
	fs.StringVar(&cfg.ServerBin, "server-bin", "", "dcon `binary` to start (default this one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if scenarios != "" {
		cfg.Scenarios = strings.Split(scenarios, ",")
	}
	switch scale {
	case "full":
	case "small":
		cfg.Small = true
	default:
		return usagef("--connectors-scale %q: want full or small", scale)
	}
	cfg.ServerFlags = strings.Fields(serverFlags)
	if cfg.Server == "" && cfg.ServerBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to start the server: %w", err)
		}
		cfg.ServerBin = exe
	}
	cfg.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		cfg.ProgressTTY = isTerminal(f)
	}
	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	rep, err := bench.Run(ctx, cfg)
	if rep != nil && len(rep.Scenarios) > 0 {
		if werr := rep.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
		if jsonFile != "" {
			raw, jerr := json.MarshalIndent(rep, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(jsonFile, append(raw, '\n'), 0o644)
			}
			if jerr != nil && err == nil {
				err = fmt.Errorf("--json: %w", jerr)
			}
		}
	}
	if ce := (*bench.ConfigError)(nil); errors.As(err, &ce) {
		return usagef("%s", ce.Msg)
	}
	return err
}
