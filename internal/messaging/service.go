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
	"time"

	"github.com/switchboard-chat/switchboard/internal/admission"
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
	// CacheTTL bounds how long what the send path reads from the store
	// (apps with their secrets and interop, conversations' member lists,
	// blocks) is reused. Changes made through this Service are seen at once;
	// changes made on another node within CacheTTL. Membership itself is
	// always enforced by the store when a message is appended. Zero: 2s.
	CacheTTL time.Duration
	// Observer sees every send, for the outage monitor. Nil: none.
	Observer Observer
	// Admission enforces each app's limits and freeze and sheds load when
	// the node is saturated (see package admission). Nil: every call is
	// admitted.
	Admission *admission.Controller
	// StoreTimeout bounds each store call, BusTimeout each publish; past
	// them the call fails with unavailable. Zero: DefaultStoreTimeout,
	// DefaultBusTimeout.
	StoreTimeout time.Duration
	BusTimeout   time.Duration
}

// Observer watches sends. ObserveSend is called once after each Send, on
// the sender's goroutine, with the sender's app, how long the send took and
// its error (nil on success, also for a repeated client id). It must return
// at once: it sits on the send path.
type Observer interface {
	ObserveSend(app string, took time.Duration, err error)
}

// cacheSize bounds each of the service's caches.
const cacheSize = 1 << 16

// Service is safe for concurrent use.
type Service struct {
	st  timeoutStore // the store with deadlines
	raw store.Store  // as given, for Store()
	adm *admission.Controller
	bus bus.Bus
	now func() time.Time
	log *slog.Logger
	ttl time.Duration
	obs Observer

	apps   *cache[string, chat.App]
	tokens *cache[string, chat.Address] // verified tokens, until their exp
	convs  *cache[string, chat.Conversation]
	blocks *cache[[2]chat.Address, bool] // (blocker, blocked)
}

// New returns a Service over cfg.Store.
func New(cfg Config) *Service {
	s := &Service{raw: cfg.Store, adm: cfg.Admission, bus: cfg.Bus, now: cfg.Now, log: cfg.Logger, ttl: cfg.CacheTTL, obs: cfg.Observer,
		apps:   newCache[string, chat.App](cacheSize),
		tokens: newCache[string, chat.Address](cacheSize),
		convs:  newCache[string, chat.Conversation](cacheSize),
		blocks: newCache[[2]chat.Address, bool](cacheSize),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.ttl == 0 {
		s.ttl = 2 * time.Second
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if cfg.BusTimeout <= 0 {
		cfg.BusTimeout = DefaultBusTimeout
	}
	s.st = timeoutStore{cfg.Store, cfg.StoreTimeout}
	if s.bus != nil {
		s.bus = timeoutBus{s.bus, cfg.BusTimeout}
	}
	return s
}

// Store returns the underlying store.
func (s *Service) Store() store.Store { return s.raw }

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
	if a, ok := s.apps.get(id, time.Now()); ok {
		return a, nil
	}
	a, err := s.st.App(ctx, id)
	if err != nil {
		return chat.App{}, storeErr(err, "app "+id)
	}
	s.remember(a)
	return a, nil
}

func (s *Service) remember(a chat.App) {
	now := time.Now()
	s.apps.put(a.ID, a, now.Add(s.ttl), now)
}

// blocked reports whether blocker has blocked blocked, through the cache.
func (s *Service) blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error) {
	k := [2]chat.Address{blocker, blocked}
	now := time.Now()
	if b, ok := s.blocks.get(k, now); ok {
		return b, nil
	}
	b, err := s.st.Blocked(ctx, blocker, blocked)
	if err != nil {
		return false, storeErr(err, "block")
	}
	s.blocks.put(k, b, now.Add(s.ttl), now)
	return b, nil
}

// cachedMember is member through the cache, for the send and typing paths:
// the store enforces membership again when it appends, and typing stores
// nothing. A member removed on another node may pass here for up to the
// cache's TTL and is then refused by the store.
func (s *Service) cachedMember(ctx context.Context, caller chat.Address, id string) (chat.Conversation, error) {
	now := time.Now()
	c, ok := s.convs.get(id, now)
	// A cached list without the caller may predate their joining on
	// another node: only the store may say no.
	if !ok || !c.HasMember(caller) {
		var err error
		c, err = s.st.Conversation(ctx, id)
		if err != nil {
			return chat.Conversation{}, storeErr(err, "conversation "+id)
		}
		s.convs.put(id, c, now.Add(s.ttl), now)
	}
	if !c.HasMember(caller) {
		return chat.Conversation{}, storeErr(store.ErrNotFound, "conversation "+id)
	}
	return c, nil
}

// Authenticate verifies a user token and returns the caller's address.
// Tokens that verified are remembered until their exp: nothing Verify
// checks changes during a token's life (apps are never deleted and their
// secrets never change; a secret rotation must clear the cache).
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

// publishMessage is publish for a new message, with its JSON: one
// allocation for the events and their updates together.
func (s *Service) publishMessage(ctx context.Context, deliveries []chat.Delivery, m *chat.Message, mj []byte) {
	s.publishEvents(ctx, appendMessageEvents(nil, deliveries, m, mj))
}

// appendMessageEvents appends the events of message m (encoded as mj) for
// its deliveries.
func appendMessageEvents(events []bus.Event, deliveries []chat.Delivery, m *chat.Message, mj []byte) []bus.Event {
	updates := make([]chat.Update, len(deliveries))
	for i, d := range deliveries {
		updates[i] = chat.Update{Cursor: d.Cursor, Type: chat.UpdateMessage, Message: m}
		events = append(events, bus.Event{User: d.User, Update: &updates[i], MessageJSON: mj})
	}
	return events
}

// publishEvents publishes events in one call; a failure is logged, since
// sessions backfill what the bus lost.
func (s *Service) publishEvents(ctx context.Context, events []bus.Event) {
	if s.bus == nil || len(events) == 0 {
		return
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
