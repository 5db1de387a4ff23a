package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	loadgen "github.com/switchboard-chat/switchboard/internal/bench"
)

const benchUsage = `usage:
  switchboard bench [--server URL[,URL...] --admin-token T] [--workload pairs|groups] [--group-size 8]
                    [--users 200] [--window 16 | --rate R] [--duration 10s] [--warmup 2s]
                    [--yardstick 3s] [--json]
  switchboard bench --connections N [--server URL --admin-token T --server-pid PID] [--json]
  switchboard bench --relay [--unbatched] [--users 200] [--window 16 | --rate R] [--duration 10s] [--warmup 2s] [--body-size 64] [--json]

With several --server URLs (the nodes of one deployment, sharing a store and
a bus), user i streams from node i mod n: every pair spans two nodes.
Without --server, bench starts a server itself on a temporary data directory
(removed afterwards): in this process for a workload, as a child process for
--connections, so that the memory measured is the server's alone.
--relay runs a plain TCP relay with no storage in the same pairs workload:
how fast this machine is, for comparing figures across machines; with
--rate, what this machine's sockets and scheduler alone cost in latency at
that rate. --unbatched writes every frame in a system call of its own, at
both ends, as a relay that does not batch does: the kind of relay the
pairs target's reference figure came from (docs/benchmarks.md). --yardstick
runs the relay just before and after a workload, and reports both.
The admin token may also come from SWITCHBOARD_ADMIN_TOKEN.
Exit status 1 when a message was lost, duplicated or out of order.

`

// bench runs the load generator (internal/bench).
func bench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	var (
		cfg        loadgen.Config
		idle       loadgen.IdleConfig
		asJSON     bool
		quiet      bool
		child      bool
		relay      bool
		yardstick  time.Duration
		cpuProfile string
		memProfile string
		traceFile  string
	)
	fs.StringVar(&cfg.Server, "server", "", "base `URL` of a running server (http://host:port), or of several nodes of one deployment, comma-separated (user i streams from node i mod n); empty: start one")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "the server's admin `token` (env SWITCHBOARD_ADMIN_TOKEN)")
	fs.StringVar(&cfg.Store, "store", "pebble", "without --server: the server's store, pebble (durable) or memory (to see what the rest costs)")
	fs.StringVar(&cfg.Workload, "workload", loadgen.Pairs, "pairs (direct conversations across two apps) or groups")
	fs.IntVar(&cfg.GroupSize, "group-size", 8, "members per group (groups)")
	fs.IntVar(&cfg.Users, "users", 200, "users taking part")
	fs.IntVar(&cfg.Window, "window", 16, "closed loop: messages in flight per user")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: `messages` per second in all (0: closed loop)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured load before it (0: none)")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "once sending stops, give up on missing answers and deliveries after this long without any")
	fs.IntVar(&cfg.BodySize, "body-size", 64, "message body `bytes`")
	fs.IntVar(&idle.Connections, "connections", 0, "open `N` idle connections and report the server's memory per connection")
	fs.IntVar(&idle.ServerPID, "server-pid", 0, "with --server: the server's process id on this machine, to read its memory (--connections) or CPU time")
	fs.BoolVar(&child, "server-process", false, "without --server: start the server as a child process, to tell its CPU time from the load generator's")
	fs.DurationVar(&idle.Settle, "settle", 2*time.Second, "with --connections: wait after the last connection before reading the memory")
	fs.BoolVar(&cfg.Unbatched, "unbatched", false, "with --relay: every frame in a system call of its own, at both ends, as a relay that does not batch writes")
	fs.BoolVar(&relay, "relay", false, "run a plain TCP relay with no storage in the same pairs workload instead: how fast this machine is, for comparing figures across machines")
	fs.DurationVar(&yardstick, "yardstick", 0, "with a workload: run the relay (as --relay), batched and unbatched, for this long before and after the run, and report the rates with the result: how fast the machine was meanwhile; with --rate, also at that rate, and report its latencies (0: no)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	fs.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write this process's CPU profile to `file` (with no --server, the server's too)")
	fs.StringVar(&memProfile, "memprofile", "", "write this process's allocation profile to `file` at the end")
	fs.StringVar(&traceFile, "trace", "", "write this process's execution trace to `file` (go tool trace; large: keep the run short)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchboard bench: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	// The environment's token is for a server named on the command line;
	// without one, bench makes its own.
	if cfg.Server != "" && cfg.AdminToken == "" {
		cfg.AdminToken = getenv("SWITCHBOARD_ADMIN_TOKEN")
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // the package's "none"
	}
	if yardstick != 0 && (relay || idle.Connections > 0 || yardstick < 0) {
		fmt.Fprintln(stderr, "switchboard bench: --yardstick takes a positive duration, and goes with a workload, not with --relay or --connections")
		return exitUsage
	}
	if cfg.Unbatched && !relay {
		fmt.Fprintln(stderr, "switchboard bench: --unbatched goes with --relay only")
		return exitUsage
	}
	if relay {
		if bad := notForRelay(fs); len(bad) > 0 {
			fmt.Fprintf(stderr, "switchboard bench: --relay measures a relay of its own in this process, not a server: it does not go with %s\n", strings.Join(bad, ", "))
			return exitUsage
		}
	}
	if !quiet {
		cfg.Progress, idle.Progress = stderr, stderr
		cfg.Terminal = isTerminal(stderr)
		idle.Terminal = cfg.Terminal
	}

	// The CPU profile and the trace run from here to the end.
	for _, rec := range []struct {
		path  string
		start func(io.Writer) error
		stop  func()
	}{{cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile}, {traceFile, trace.Start, trace.Stop}} {
		if rec.path == "" {
			continue
		}
		f, err := os.Create(rec.path)
		if err == nil {
			if err = rec.start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, "switchboard bench:", err)
			return exitError
		}
		defer f.Close()
		defer rec.stop()
	}
	if memProfile != "" {
		defer func() {
			f, err := os.Create(memProfile)
			if err == nil {
				err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
			}
			if err != nil {
				fmt.Fprintln(stderr, "switchboard bench:", err)
			}
		}()
	}

	var (
		res   interface{ WriteTable(io.Writer) error }
		clean = true
		err   error
	)
	if idle.ServerPID != 0 && cfg.Server == "" {
		fmt.Fprintln(stderr, "switchboard bench: --server-pid names the process of a --server")
		return exitUsage
	}
	// The child server, when there is one, is this binary serving. The
	// store and bus are explicit, so that a SWITCHBOARD_STORE in the
	// environment does not change what is measured.
	var serveCmd []string
	if cfg.Server == "" && (child || idle.Connections > 0) {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "switchboard bench:", err)
			return exitError
		}
		serveCmd = []string{exe, "serve", "--store", cfg.Store, "--bus", "local"}
	}
	if relay {
		var r *loadgen.RelayResult
		r, err = loadgen.Relay(ctx, cfg)
		if r != nil {
			clean = r.OutOfOrder == 0
		}
		res = r
	} else if idle.Connections > 0 {
		idle.Server, idle.AdminToken = cfg.Server, cfg.AdminToken
		idle.ServerCommand = serveCmd
		var r *loadgen.IdleResult
		r, err = loadgen.Idle(ctx, idle)
		res = r
	} else {
		cfg.ServerPID = idle.ServerPID
		if child {
			cfg.ServerCommand = serveCmd
		}
		var r *loadgen.Result
		r, err = loadgen.RunWithYardstick(ctx, cfg, yardstick)
		if r != nil {
			clean = r.Lost == 0 && r.Duplicated == 0 && r.OutOfOrder == 0
		}
		res = r
	}
	if err != nil {
		fmt.Fprintln(stderr, "switchboard bench:", err)
		return exitError
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		err = enc.Encode(res)
	} else {
		err = res.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "switchboard bench:", err)
		return exitError
	}
	if !clean {
		fmt.Fprintln(stderr, "switchboard bench: messages were lost, duplicated or out of order")
		return exitError
	}
	return exitOK
}

// notForRelay lists the flags set on the command line that --relay does
// not take: those of a server or another workload. Taking them silently
// would make a figure look like what it is not.
func notForRelay(fs *flag.FlagSet) []string {
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		switch v := f.Value.String(); f.Name {
		case "relay", "unbatched", "users", "window", "rate", "duration", "warmup", "body-size", "json", "quiet", "cpuprofile", "memprofile", "trace":
		case "workload":
			if v != loadgen.Pairs {
				bad = append(bad, "--workload "+v)
			}
		case "store":
			if v != "pebble" {
				bad = append(bad, "--store "+v)
			}
		default:
			bad = append(bad, "--"+f.Name)
		}
	})
	return bad
}

// isTerminal reports whether w is a terminal, where progress is redrawn
// in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
