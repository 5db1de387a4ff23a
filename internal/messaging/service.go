// Package messaging is Switchboard's application layer: it validates input,
// authorises every call (membership, interop, blocks), calls the Store, and
// publishes what the store appended to the Bus. The HTTP and WebSocket edges
// are thin adapters over it.
package messaging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/auth"
	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// Config configures a Service. Store is required; zero values elsewhere
// mean defaults.
type Config struct {
	Store store.Store
	// Bus receives every appended update after commit. Nil: none.
	Bus bus.Bus
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger. Nil: discard.
	Logger *slog.Logger
	// AppCacheTTL bounds how long an app (secret, interop) read from the
	// store is reused; changes made through this Service are seen at once.
	// Zero: 2s.
	AppCacheTTL time.Duration
}

// Service is safe for concurrent use.
type Service struct {
	st     store.Store
	bus    bus.Bus
	now    func() time.Time
	log    *slog.Logger
	appTTL time.Duration

	mu   sync.Mutex // guards apps
	apps map[string]cachedApp

	tokens tokenCache
}

type cachedApp struct {
	app     chat.App
	expires time.Time
}

// New returns a Service over cfg.Store.
func New(cfg Config) *Service {
	s := &Service{st: cfg.Store, bus: cfg.Bus, now: cfg.Now, log: cfg.Logger, appTTL: cfg.AppCacheTTL, apps: map[string]cachedApp{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.appTTL == 0 {
		s.appTTL = 2 * time.Second
	}
	return s
}

// Store returns the underlying store.
func (s *Service) Store() store.Store { return s.st }

func (s *Service) clock() time.Time { return s.now().UTC() }

// storeErr turns a store error into the API's error kinds. what names the
// thing for a not-found message.
func storeErr(err error, what string) error {
	var ce *chat.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return err
	case errors.Is(err, store.ErrNotFound):
		return chat.Errorf(chat.NotFound, "%s not found", what)
	case errors.Is(err, store.ErrConflict):
		return chat.Errorf(chat.Conflict, "%s already exists", what)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		return &chat.Error{Code: chat.Unavailable, Message: "the message store is unavailable; retry shortly"}
	}
	return err
}

// app returns an app through the cache.
func (s *Service) app(ctx context.Context, id string) (chat.App, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.apps[id]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.app, nil
	}
	a, err := s.st.App(ctx, id)
	if err != nil {
		return chat.App{}, storeErr(err, "app "+id)
	}
	s.remember(a)
	return a, nil
}

func (s *Service) remember(a chat.App) {
	s.mu.Lock()
	s.apps[a.ID] = cachedApp{app: a, expires: time.Now().Add(s.appTTL)}
	s.mu.Unlock()
}

// Authenticate verifies a user token and returns the caller's address.
// Tokens that verified are remembered until their exp (see tokenCache).
func (s *Service) Authenticate(ctx context.Context, token string) (chat.Address, error) {
	now := time.Now() // the clock jwt checks exp against, not s.now
	if a, ok := s.tokens.get(token, now); ok {
		return a, nil
	}
	a, exp, err := auth.VerifyExpiry(ctx, token, func(ctx context.Context, id string) (string, error) {
		a, err := s.app(ctx, id)
		return a.Secret, err
	})
	if err != nil {
		return "", err
	}
	s.tokens.put(token, a, exp, now)
	return a, nil
}

// publish hands the updates to the bus. A failure is logged, not returned:
// the updates are stored, and sessions backfill what the bus lost.
func (s *Service) publish(ctx context.Context, deliveries []chat.Delivery, u chat.Update) {
	if s.bus == nil || len(deliveries) == 0 {
		return
	}
	events := make([]bus.Event, len(deliveries))
	for i, d := range deliveries {
		u := u
		u.Cursor = d.Cursor
		events[i] = bus.Event{User: d.User, Update: &u}
	}
	if err := s.bus.Publish(ctx, events...); err != nil {
		s.log.Warn("bus publish failed; sessions will backfill", "err", err, "events", len(events))
	}
}

func randomID(prefix string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}
