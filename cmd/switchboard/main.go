// Command switchboard runs the Switchboard messaging backend.
//
//	switchboard serve [--addr 127.0.0.1:8080] [--data ./data] [--admin-token TOKEN]
//	                  [--store pebble|memory|postgres://...] [--bus local|nats://...]
//	switchboard version
//
// Each serve flag also reads SWITCHBOARD_<NAME> (SWITCHBOARD_ADDR, ...); a
// flag on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/switchboard-chat/switchboard/internal/server"
)

// version is set at release time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the server failed
	exitUsage = 2 // the command line was wrong
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage:
  switchboard serve [--addr ADDR] [--data DIR] [--admin-token TOKEN] [--store pebble|memory|postgres://...] [--bus local|nats://...]
  switchboard bench [flags]          load-test a server (see switchboard bench -h)
  switchboard detect FILE.csv        run the outage detector over a timestamp,value CSV
  switchboard version

Run "switchboard serve -h" for the flags of serve.
`

// run is the whole command, minus the process: tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stderr)
	case "bench":
		return bench(ctx, args[1:], getenv, stdout, stderr)
	case "detect":
		return detect(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "switchboard", versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "switchboard: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg server.Config
	// An environment variable sets the flag's default, so that the command
	// line wins over it.
	env := func(name, def string) string {
		if v := getenv("SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&cfg.Addr, "addr", env("addr", "127.0.0.1:8080"), "`address` to listen on (env SWITCHBOARD_ADDR)")
	fs.StringVar(&cfg.DataDir, "data", env("data", "./data"), "data `directory` (env SWITCHBOARD_DATA)")
	fs.StringVar(&cfg.AdminToken, "admin-token", env("admin-token", ""), "admin `token`; empty: kept in the data directory, made on first start (env SWITCHBOARD_ADMIN_TOKEN)")
	fs.StringVar(&cfg.Store, "store", env("store", "pebble"), "message store: pebble, memory, or postgres://... for several nodes (env SWITCHBOARD_STORE)")
	fs.StringVar(&cfg.Bus, "bus", env("bus", "local"), "update bus: local, or nats://... for several nodes (env SWITCHBOARD_BUS)")
	fs.BoolVar(&cfg.Dev, "dev", env("dev", "") == "true" || env("dev", "") == "1", "development sign-in at POST /v1/dev/login: anyone can sign in as anyone; never in production (env SWITCHBOARD_DEV)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchboard serve: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = log
	srv, err := server.New(cfg)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitError
	}
	if err := srv.Run(ctx); err != nil {
		log.Error("server failed", "err", err)
		return exitError
	}
	return exitOK
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}
