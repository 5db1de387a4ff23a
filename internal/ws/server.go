package ws

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/httpapi"
	"github.com/switchboard-chat/switchboard/internal/messaging"
)

// Config configures a Server. Service and Bus are required; a zero value
// anywhere else means the default named on the field.
type Config struct {
	Service *messaging.Service
	Bus     bus.Bus
	// Logger. Nil: discard.
	Logger *slog.Logger

	// QueueFrames and QueueBytes bound each socket's outgoing queue; a
	// client that falls further behind is disconnected. Zero: 1024 frames,
	// 1 MiB.
	QueueFrames int
	QueueBytes  int
	// SlowCloseGrace is how long the close frame to a client too slow for
	// its queue may wait behind the write in progress before the socket is
	// cut. Zero: 1s.
	SlowCloseGrace time.Duration
	// MaxInFlight bounds the sends, reads and typing notices one socket may
	// have in progress at once; past it the server stops reading from the
	// socket until one finishes. Zero: 32.
	MaxInFlight int
	// MaxFrameBytes is the largest frame a client may send. Zero: 64 KiB.
	MaxFrameBytes int64
	// PingInterval is how often the server pings; PongTimeout how long it
	// waits for the answer before dropping the socket. Zero: 25s and 10s.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds one write to the socket. Zero: 10s.
	WriteTimeout time.Duration
	// GapWait is how long a session waits for a missing cursor to arrive on
	// the bus before it backfills from the store. Zero: 20ms; negative: no
	// wait.
	GapWait time.Duration
	// SyncPage is the page size of replay and backfill. Zero: 128.
	SyncPage int
	// TypingPerSecond and TypingBurst rate-limit typing frames per socket.
	// Zero: 2 per second, burst 5.
	TypingPerSecond float64
	TypingBurst     int
	// MaxBadFrames is how many malformed frames a socket may send in quick
	// succession (a bucket refilled at one per second) before it is closed.
	// Zero: 10.
	MaxBadFrames int
	// OriginPatterns lists the hosts other than the request's own whose
	// pages may open a socket (see websocket.AcceptOptions). Requests with
	// no Origin header (non-browser clients) are always accepted.
	OriginPatterns []string
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.QueueFrames, 1024)
	def(&c.QueueBytes, 1<<20)
	def(&c.MaxInFlight, 32)
	def(&c.SyncPage, 128)
	def(&c.TypingBurst, 5)
	def(&c.MaxBadFrames, 10)
	if c.SyncPage > chat.MaxSyncLimit {
		c.SyncPage = chat.MaxSyncLimit
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.GapWait == 0 {
		c.GapWait = 20 * time.Millisecond
	}
	if c.SlowCloseGrace <= 0 {
		c.SlowCloseGrace = time.Second
	}
	if c.TypingPerSecond <= 0 {
		c.TypingPerSecond = 2
	}
}

// Server is an http.Handler for /v1/ws. It is safe for concurrent use.
type Server struct {
	cfg    Config
	svc    *messaging.Service
	bus    bus.Bus
	log    *slog.Logger
	accept websocket.AcceptOptions

	wg sync.WaitGroup // one count per session, and per ServeHTTP in progress

	parked atomic.Int64 // sessions whose socket the poller holds: no goroutine
	merged atomic.Int64 // acks written in the place of updates (merge_acks)

	ops workers // the goroutines that run the sessions' operations

	mu      sync.Mutex // guards the 2 following fields
	conns   map[*conn]struct{}
	closing bool
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Logger != nil {
		// The poller is the process's, not the Server's.
		pollLog.Store(cfg.Logger)
	}
	cfg.setDefaults()
	return &Server{
		cfg:    cfg,
		svc:    cfg.Service,
		bus:    cfg.Bus,
		log:    cfg.Logger,
		accept: websocket.AcceptOptions{OriginPatterns: cfg.OriginPatterns},
		conns:  make(map[*conn]struct{}),
	}
}

// Connections returns the number of open sessions.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// IdleConnections returns the number of open sessions that are idle with no
// goroutine of their own: their socket waits in the poller.
func (s *Server) IdleConnections() int { return int(s.parked.Load()) }

// AcksInStream returns how many acks stood in for their message's update
// (merge_acks): each one a frame that was not written.
func (s *Server) AcksInStream() int64 { return s.merged.Load() }

// ServeHTTP authenticates the request, upgrades it and starts the session.
// Errors before the upgrade answer in the API's JSON error shape.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		writeError(w, chat.Errorf(chat.Unavailable, "the server is shutting down; reconnect shortly"))
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	token := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			writeError(w, chat.Errorf(chat.Unauthenticated, "the Authorization header must be: Bearer <token>"))
			return
		}
		token = strings.TrimSpace(t)
	}
	user, err := s.svc.Authenticate(r.Context(), token)
	if err != nil {
		if chat.ErrorCode(err) == chat.Internal {
			s.log.Error("ws: authenticate", "err", err, "request_id", httpapi.RequestID(r.Context()))
		}
		writeError(w, err)
		return
	}
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		after, err = strconv.ParseInt(v, 10, 64)
		if err != nil || after < 0 {
			writeError(w, chat.Errorf(chat.InvalidArgument, "after must be a cursor, 0 or more"))
			return
		}
	}

	mergeAcks := false
	if v := r.URL.Query().Get("merge_acks"); v != "" {
		if mergeAcks, err = strconv.ParseBool(v); err != nil {
			writeError(w, chat.Errorf(chat.InvalidArgument, "merge_acks must be true or false"))
			return
		}
	}

	// The app's connection limit and freeze (package admission).
	release, err := s.svc.Connect(r.Context(), user)
	if err != nil {
		writeError(w, err)
		return
	}
	hw := &hijackWriter{ResponseWriter: w, writeTimeout: s.cfg.WriteTimeout}
	wc, err := websocket.Accept(hw, r, &s.accept)
	if err != nil {
		release()
		// Accept has answered the request already.
		s.log.Debug("ws: upgrade failed", "err", err, "user", user, "request_id", httpapi.RequestID(r.Context()))
		return
	}
	c := newConn(s, wc, hw.sock, hw.cork, user, after, mergeAcks)
	c.reqID = httpapi.RequestID(r.Context())
	c.release = release

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		wc.Close(websocket.StatusGoingAway, "server shutting down; reconnect")
		release()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	// The session runs on a goroutine of its own so that this one, with
	// the stack and the request net/http gave it, can end.
	go c.run()
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.release()
	s.wg.Done()
}

// Shutdown refuses new sockets, lets the sends already read finish and be
// answered, then closes every socket with 1001 (going away) and waits for
// the sessions to end. When ctx ends first, the remaining sockets are
// dropped at once, and Shutdown returns ctx's error after they are gone.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		// The socket itself: the library's CloseNow would wait out a
		// close handshake in progress (up to 5 s for an unanswered close).
		c.sock.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// apiError returns err as the client may see it: a *chat.Error, or a
// generic internal error for anything else.
func apiError(err error) *chat.Error {
	var ce *chat.Error
	if errors.As(err, &ce) {
		return ce
	}
	return &chat.Error{Code: chat.Internal, Message: "internal error"}
}

func writeError(w http.ResponseWriter, err error) {
	ce := apiError(err)
	status := httpapi.Status(ce.Code)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error *chat.Error `json:"error"`
	}{ce})
}
