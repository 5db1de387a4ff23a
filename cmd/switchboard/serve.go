package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/internal/config"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
)

// defaultProcs is the GOMAXPROCS the runtime chose, before serve raises it
// (pebblestore.Procs), so that serving twice in one process raises it once.
var defaultProcs = runtime.GOMAXPROCS(0)

// envName is the environment variable of a serve setting.
func envName(key string) string {
	return "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// serve runs the server. Its settings come, each from the first that sets
// it, from the command line, the environment (SWITCHBOARD_<NAME>), the
// config file (--config or SWITCHBOARD_CONFIG), the defaults. Every setting
// is checked before anything is opened or created, so that a bad one
// leaves nothing behind.
func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := config.Defaults()
	configPath := fs.String("config", "", "TOML `file` with these settings (keys: the flag names); flags and SWITCHBOARD_* override it (env SWITCHBOARD_CONFIG)")
	fs.String("addr", def.Addr, "`address` to listen on (env SWITCHBOARD_ADDR)")
	fs.String("data", def.Data, "data `directory` (env SWITCHBOARD_DATA)")
	fs.String("admin-token", "", "admin `token`; empty: kept in the data directory, made on first start (env SWITCHBOARD_ADMIN_TOKEN)")
	fs.String("store", def.Store, "message store: pebble, memory, or postgres://... for several nodes (env SWITCHBOARD_STORE)")
	fs.String("bus", def.Bus, "update bus: local, or nats://... for several nodes (env SWITCHBOARD_BUS)")
	fs.Bool("dev", false, "development sign-in at POST /v1/dev/login: anyone can sign in as anyone; never in production (env SWITCHBOARD_DEV)")
	fs.String("shutdown-timeout", time.Duration(def.ShutdownTimeout).String(), "how long to let in-flight requests and sockets finish on SIGTERM (env SWITCHBOARD_SHUTDOWN_TIMEOUT)")
	fs.String("log-format", def.LogFormat, "log format: text or json (env SWITCHBOARD_LOG_FORMAT)")
	fs.String("log-level", def.LogLevel, "log level: debug (every request), info, warn or error (env SWITCHBOARD_LOG_LEVEL)")
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

	cfg, err := settings(fs, *configPath, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard serve: %v\nnothing was started\n", err)
		return exitError
	}
	log := newLogger(cfg, stderr)
	if cfg.Store == "pebble" && getenv("GOMAXPROCS") == "" {
		n := pebblestore.Procs(defaultProcs)
		runtime.GOMAXPROCS(n)
		log.Info("one more P than the runtime chose, for the store's fsyncs (set GOMAXPROCS to choose)", "gomaxprocs", n)
	}
	srv, err := server.New(server.Config{
		Addr:            cfg.Addr,
		DataDir:         cfg.Data,
		AdminToken:      cfg.AdminToken,
		Store:           cfg.Store,
		Bus:             cfg.Bus,
		Dev:             cfg.Dev,
		Logger:          log,
		ShutdownTimeout: time.Duration(cfg.ShutdownTimeout),
	})
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

// settings layers the defaults, the config file, the environment and the
// flags set on fs, and validates the result. An error names the setting
// and where it came from.
func settings(fs *flag.FlagSet, configPath string, getenv func(string) string) (config.Serve, error) {
	from := map[string]string{} // key -> where its value came from
	if configPath == "" {
		configPath = getenv("SWITCHBOARD_CONFIG")
	}
	cfg := config.Defaults()
	if configPath != "" {
		var err error
		if cfg, err = config.Load(configPath); err != nil {
			return cfg, fmt.Errorf("invalid config file: %w", err)
		}
		for _, k := range config.Keys {
			from[k] = configPath
		}
	}
	for _, k := range config.Keys {
		if v := getenv(envName(k)); v != "" {
			if err := cfg.Set(k, v); err != nil {
				return cfg, fmt.Errorf("%s: %w", envName(k), err)
			}
			from[k] = envName(k)
		}
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" || err != nil {
			return
		}
		if err = cfg.Set(f.Name, f.Value.String()); err != nil {
			err = fmt.Errorf("--%s: %w", f.Name, err)
		}
		from[f.Name] = "--" + f.Name
	})
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && from[ce.Key] != "" {
			return cfg, fmt.Errorf("%w (set by %s)", err, from[ce.Key])
		}
		return cfg, err
	}
	return cfg, nil
}

// newLogger makes the server's logger as the settings say; they were
// validated.
func newLogger(cfg config.Serve, w io.Writer) *slog.Logger {
	level, _ := config.ParseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
