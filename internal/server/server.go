// Package server wires one Switchboard node together: the store, the bus,
// the messaging service and the HTTP API, and runs it until its context
// ends.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/auth"
	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/bus/localbus"
	"github.com/switchboard-chat/switchboard/internal/bus/natsbus"
	"github.com/switchboard-chat/switchboard/internal/httpapi"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/metrics"
	"github.com/switchboard-chat/switchboard/internal/outage/status"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
	"github.com/switchboard-chat/switchboard/internal/store/pgstore"
	"github.com/switchboard-chat/switchboard/internal/webui"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

// Config configures a Server. Zero values mean the defaults named on each
// field.
type Config struct {
	// Addr is the TCP address to listen on. Port 0 picks a free port; Addr
	// reports it. Empty: "127.0.0.1:8080".
	Addr string
	// DataDir holds the Pebble store and the admin token file. Empty:
	// "./data".
	DataDir string
	// AdminToken authorises the admin calls. Empty: read DataDir/admin-token,
	// or create one there (mode 0600) and log it once.
	AdminToken string
	// Store chooses the message store: "pebble" (in DataDir/pebble),
	// "memory" (nothing survives a restart; for tests and trials), or a
	// PostgreSQL URL, postgres://... (several nodes share it). Empty:
	// "pebble".
	Store string
	// Bus chooses how updates reach live sessions: "local" (this process
	// only) or a NATS URL, nats://... (across nodes). Empty: "local".
	Bus string
	// Dev turns on the development sign-in (POST /v1/dev/login), which lets
	// anyone sign in as any user. Off by default; the server warns while on.
	Dev bool
	// Logger. Nil: discard.
	Logger *slog.Logger
	// ShutdownTimeout bounds how long Run waits for in-flight requests once
	// its context ends. Zero: 10s.
	ShutdownTimeout time.Duration
}

// Server is one node. Create it with New, then call Run once.
type Server struct {
	cfg        Config
	log        *slog.Logger
	adminToken string
	store      store.Store
	bus        bus.Bus
	svc        *messaging.Service
	api        *httpapi.Handler
	ws         *ws.Server
	status     *status.Service
	http       *http.Server
	metrics    *metrics.Metrics

	ready chan struct{} // closed once Run listens or fails to
	addr  string        // set before ready is closed

	runOnce   sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New opens the store and builds the node; it does not listen yet. On
// success the caller must call Run or Close.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	if cfg.Store == "" {
		cfg.Store = "pebble"
	}
	if cfg.Bus == "" {
		cfg.Bus = "local"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}

	// Check every choice before touching the disk, so that a typo in a
	// flag leaves nothing behind.
	switch {
	case cfg.Store == "pebble" || cfg.Store == "memory":
	case isPostgres(cfg.Store):
	default:
		return nil, fmt.Errorf("server: unknown store %q: use pebble, memory or postgres://...", redactURL(cfg.Store))
	}
	switch {
	case cfg.Bus == "local":
	case strings.HasPrefix(cfg.Bus, "nats://"):
	default:
		return nil, fmt.Errorf("server: unknown bus %q: use local or nats://...", redactURL(cfg.Bus))
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	s.adminToken = cfg.AdminToken
	if s.adminToken == "" {
		tok, err := adminTokenFile(filepath.Join(cfg.DataDir, "admin-token"), s.log)
		if err != nil {
			return nil, err
		}
		s.adminToken = tok
	}

	switch cfg.Store {
	case "pebble":
		st, err := pebblestore.Open(filepath.Join(cfg.DataDir, "pebble"), &pebblestore.Options{Logger: s.log.With("component", "pebble")})
		if err != nil {
			return nil, fmt.Errorf("server: open store: %w", err)
		}
		s.store = st
	case "memory":
		s.store = memstore.New()
	default: // postgres://, checked above
		st, err := pgstore.Open(context.Background(), cfg.Store, &pgstore.Options{Logger: s.log.With("component", "postgres")})
		if err != nil {
			return nil, fmt.Errorf("server: open store %s: %w", redactURL(cfg.Store), err)
		}
		s.store = st
	}

	s.metrics = metrics.New()
	s.store = s.metrics.Store(s.store)

	if cfg.Bus == "local" {
		s.bus = localbus.New()
	} else {
		b, err := natsbus.New(cfg.Bus, &natsbus.Options{Logger: s.log.With("component", "nats")})
		if err != nil {
			s.store.Close()
			return nil, fmt.Errorf("server: bus %s: %w", redactURL(cfg.Bus), err)
		}
		s.bus = b
	}
	sig := status.NewSignals()
	s.bus = s.metrics.Bus(s.bus)
	s.svc = messaging.New(messaging.Config{Store: s.store, Bus: s.bus, Logger: s.log, Observer: metrics.Observers(sig, s.metrics),
		// Each app in its own bulkhead, with the defaults of
		// chat.DefaultLimits until the operators set its limits.
		Admission: admission.New(admission.Config{})})
	// The status side keeps its own storage, so that it answers while the
	// message store does not.
	st, err := status.Open(status.Config{Dir: filepath.Join(cfg.DataDir, "status"), Backend: s.svc, Signals: sig,
		AdminToken: s.adminToken, Logger: s.log.With("component", "status")})
	if err != nil {
		s.bus.Close()
		s.store.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	s.status = st
	s.api = httpapi.New(httpapi.Config{Service: s.svc, AdminToken: s.adminToken, Logger: s.log})
	s.ws = ws.New(ws.Config{Service: s.svc, Bus: s.bus, Logger: s.log.With("component", "ws")})
	s.api.Handle("GET /v1/ws", s.ws)
	s.metrics.Gauge("switchboard_ws_connections", "Open WebSocket sessions on this node.", func() float64 { return float64(s.ws.Connections()) })
	s.metrics.Gauge("switchboard_ws_idle_connections", "Open WebSocket sessions on this node parked with the poller: idle, without a goroutine.", func() float64 { return float64(s.ws.IdleConnections()) })
	s.metrics.CounterFunc("switchboard_ws_acks_in_stream_total", "Acks of sends written in the place of their message's update (merge_acks), each a frame not written.", func() float64 { return float64(s.ws.AcksInStream()) })
	s.metrics.WatchStates(s.appStates)
	s.api.Handle("GET /metrics", s.metrics.Handler(s.log))
	webui.Mount(s.api)
	s.status.Mount(s.api)
	if cfg.Dev {
		webui.MountDev(s.api, s.svc, s.log)
		s.log.Warn("development sign-in is on (--dev): anyone can sign in as any user at POST /v1/dev/login; never run it like this in production")
	}
	s.http = &http.Server{
		Handler:           s.api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for handlers, and an event stream never ends by itself.
	s.http.RegisterOnShutdown(s.status.CloseStreams)
	return s, nil
}

// adminTokenFile reads the admin token kept at path, or makes one there.
func adminTokenFile(path string, log *slog.Logger) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("server: %s is empty; delete it to make a new admin token, or pass one", path)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the admin token file is readable by others; chmod 600 it", "file", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("server: read admin token: %w", err)
	}
	tok := auth.NewAdminToken()
	// O_EXCL: two nodes starting on one directory must not each keep a
	// different token.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return adminTokenFile(path, log)
	}
	if err != nil {
		return "", fmt.Errorf("server: create admin token: %w", err)
	}
	_, err = f.WriteString(tok + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("server: write admin token: %w", err)
	}
	log.Warn("created an admin token; it is printed this once and kept in the file", "admin_token", tok, "file", path)
	return tok, nil
}

func isPostgres(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// redactURL drops credentials from a store or bus URL before it is shown.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "***@" + rest[at+1:]
	}
	return scheme + "://" + rest
}

// Run listens on Config.Addr, logs one "listening" line with the bound
// address once ready, and serves until ctx ends. Then it stops accepting,
// lets in-flight requests finish (up to Config.ShutdownTimeout), and closes
// the store. It returns nil after a clean shutdown. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	err := errors.New("server: Run called twice")
	s.runOnce.Do(func() { err = s.run(ctx) })
	return err
}

func (s *Server) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		close(s.ready)
		s.Close()
		return fmt.Errorf("server: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	close(s.ready)
	s.log.Info("listening", "addr", s.addr)

	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)

	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// http.Server.Shutdown does not wait for hijacked connections: the
	// WebSocket sessions finish their in-flight sends and get going-away
	// from ws.Shutdown, alongside.
	wsDone := make(chan error, 1)
	go func() { wsDone <- s.ws.Shutdown(sctx) }()
	shutErr := s.http.Shutdown(sctx)
	if err := <-wsDone; err != nil {
		s.log.Warn("websocket sessions outlived the shutdown deadline", "err", err)
	}
	if shutErr != nil {
		// In-flight requests outlived the deadline: cut them off. They see
		// the store closed and answer 503, which clients retry.
		s.log.Warn("shutdown deadline passed; closing remaining connections", "err", shutErr)
		s.http.Close()
	}
	if serveErr == nil {
		serveErr = <-errc
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	closeErr := s.Close()
	s.log.Info("stopped")
	return errors.Join(serveErr, closeErr)
}

// Addr returns the bound address. It blocks until Run is listening, or
// returns "" once Run failed to listen; call it after starting Run.
func (s *Server) Addr() string {
	<-s.ready
	return s.addr
}

// Ready is closed once Run listens (or failed to).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// AdminToken returns the token that authorises admin calls.
func (s *Server) AdminToken() string { return s.adminToken }

// Handler returns the node's HTTP handler, for tests that serve it
// themselves.
func (s *Server) Handler() http.Handler { return s.api }

// Metrics returns the node's metrics, served at GET /metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// appStates is each app's state in the outage monitor, for the metrics.
func (s *Server) appStates() map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	snap := s.status.Snapshot(ctx)
	states := make(map[string]string, len(snap.Apps))
	for _, a := range snap.Apps {
		states[a.App] = a.State
	}
	return states
}

// Service returns the messaging service the node serves.
func (s *Server) Service() *messaging.Service { return s.svc }

// Close releases the bus and the store. Run calls it on the way out; call
// it yourself only when Run is never called. Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.status != nil {
			errs = append(errs, s.status.Close())
		}
		if s.bus != nil {
			errs = append(errs, s.bus.Close())
		}
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("server: close store: %w", err))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
