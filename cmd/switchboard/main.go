// Command switchboard runs the Switchboard messaging backend.
//
//	switchboard serve [--config FILE] [--addr 127.0.0.1:8080] [--data ./data] [--admin-token TOKEN]
//	                  [--store pebble|memory|postgres://...] [--bus local|nats://...]
//	                  [--shutdown-timeout 10s] [--log-format text|json] [--log-level info]
//	switchboard config check FILE
//	switchboard app create|list|interop|limits|freeze|unfreeze ...
//	switchboard token APP USER [--ttl 1h]
//	switchboard backup --to DIR [--data DIR] [--server URL]
//	switchboard version
//
// Each serve flag also reads SWITCHBOARD_<NAME> (SWITCHBOARD_ADDR, ...); a
// flag on the command line wins over the environment, which wins over the
// config file. docs/operations.md describes them all.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
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
  switchboard serve [--config FILE] [--addr ADDR] [--data DIR] [--admin-token TOKEN] [--store pebble|memory|postgres://...] [--bus local|nats://...]
                    [--shutdown-timeout 10s] [--log-format text|json] [--log-level debug|info|warn|error]
  switchboard config check FILE      validate a config file for serve, starting nothing
  switchboard app create ID [--name NAME]
  switchboard app list
  switchboard app interop APP OTHER... | --clear
  switchboard app limits APP [--sends-per-second N] [--burst N] [--max-concurrent-requests N] [--max-connections N] [--user-sends-per-second N] [--user-burst N]
  switchboard app freeze APP | unfreeze APP
  switchboard token APP USER [--ttl 1h]
  switchboard backup --to DIR [--data DIR] [--server URL]
  switchboard bench [flags]          load-test a server (see switchboard bench -h)
  switchboard detect FILE.csv        run the outage detector over a timestamp,value CSV
  switchboard version

The app, token and backup commands call the server at --server (default
http://127.0.0.1:8080, env SWITCHBOARD_SERVER) with the admin token from
SWITCHBOARD_ADMIN_TOKEN or --admin-token; they print tables, or JSON with
--json. Run "switchboard serve -h" for the flags of serve.
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
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "app":
		return appCmd(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return tokenCmd(ctx, args[1:], getenv, stdout, stderr)
	case "backup":
		return backupCmd(ctx, args[1:], getenv, stdout, stderr)
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
