package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// Store operation labels, one per method of store.Store.
const (
	opCreateApp          = "create_app"
	opApp                = "app"
	opApps               = "apps"
	opUpdateApp          = "update_app"
	opCreateConversation = "create_conversation"
	opConversation       = "conversation"
	opUpdateMembers      = "update_members"
	opAppendMessage      = "append_message"
	opMessages           = "messages"
	opMarkRead           = "mark_read"
	opConversations      = "conversations"
	opUpdates            = "updates"
	opBlock              = "block"
	opUnblock            = "unblock"
	opBlocked            = "blocked"
	opPing               = "ping"
	opCheckpoint         = "checkpoint"
	opAppendMessages     = "append_messages"
)

var storeOps = []string{opCreateApp, opApp, opApps, opUpdateApp, opCreateConversation, opConversation,
	opUpdateMembers, opAppendMessage, opMessages, opMarkRead, opConversations, opUpdates, opBlock,
	opUnblock, opBlocked, opPing, opCheckpoint, opAppendMessages}

// measuredStore times every call of the store beneath and counts the
// messages it stores.
type measuredStore struct {
	st   store.Store
	m    *Metrics
	time map[string]prometheus.Observer // op -> child, filled once in Store
	errs map[string]prometheus.Counter
}

var (
	_ store.Store        = (*measuredStore)(nil)
	_ store.Checkpointer = (*measuredStore)(nil)
)

// queueDepther is implemented by stores with a write queue (pebblestore).
type queueDepther interface{ QueueDepth() int }

// engineCollector is implemented by stores with figures of their own
// engine (pebblestore: WAL syncs, flushes, compactions, write stalls).
type engineCollector interface{ Collector() prometheus.Collector }

// Store returns st measured: switchboard_store_duration_seconds{op},
// switchboard_store_errors_total{op}, switchboard_messages_sent_total{app}
// for each message stored, and, when st keeps a write queue,
// switchboard_store_queue_depth, and its engine's own metrics when it has
// them (switchboard_pebble_*). Call it once per Metrics.
func (m *Metrics) Store(st store.Store) store.Store {
	ms := &measuredStore{st: st, m: m, time: make(map[string]prometheus.Observer), errs: make(map[string]prometheus.Counter)}
	for _, op := range storeOps {
		ms.time[op] = m.storeSeconds.WithLabelValues(op)
		ms.errs[op] = m.storeErrors.WithLabelValues(op)
	}
	if q, ok := st.(queueDepther); ok {
		m.Gauge("switchboard_store_queue_depth", "Writes waiting for the store's writer.", func() float64 { return float64(q.QueueDepth()) })
	}
	if e, ok := st.(engineCollector); ok {
		m.reg.MustRegister(e.Collector())
	}
	if b, ok := st.(store.BatchAppender); ok {
		return &measuredBatchStore{ms, b}
	}
	return ms
}

// measuredBatchStore is a measuredStore over a store.BatchAppender, which it
// keeps one: hiding it would make the Service append a batch one message at
// a time.
type measuredBatchStore struct {
	*measuredStore
	b store.BatchAppender
}

func (s *measuredBatchStore) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	start := time.Now()
	res, err := s.b.AppendMessages(ctx, ms)
	s.done(opAppendMessages, start, err)
	for _, r := range res {
		if r.Created {
			s.m.messageStored(r.Message.Sender.App())
		}
	}
	return res, err
}

// done observes a call that began at start; expected outcomes (not found,
// conflict, a caller's own error from fn) are not counted as errors.
func (s *measuredStore) done(op string, start time.Time, err error) {
	s.time[op].Observe(time.Since(start).Seconds())
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, context.Canceled) {
		return
	}
	var ce *chat.Error
	if errors.As(err, &ce) {
		return
	}
	s.errs[op].Inc()
}

func (s *measuredStore) CreateApp(ctx context.Context, app chat.App) error {
	start := time.Now()
	err := s.st.CreateApp(ctx, app)
	s.done(opCreateApp, start, err)
	return err
}

func (s *measuredStore) App(ctx context.Context, id string) (chat.App, error) {
	start := time.Now()
	a, err := s.st.App(ctx, id)
	s.done(opApp, start, err)
	return a, err
}

func (s *measuredStore) Apps(ctx context.Context) ([]chat.App, error) {
	start := time.Now()
	list, err := s.st.Apps(ctx)
	s.done(opApps, start, err)
	return list, err
}

func (s *measuredStore) UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error) {
	start := time.Now()
	a, err := s.st.UpdateApp(ctx, id, fn)
	s.done(opUpdateApp, start, err)
	return a, err
}

func (s *measuredStore) CreateConversation(ctx context.Context, c chat.Conversation) (chat.Conversation, []chat.Delivery, bool, error) {
	start := time.Now()
	conv, ds, created, err := s.st.CreateConversation(ctx, c)
	s.done(opCreateConversation, start, err)
	return conv, ds, created, err
}

func (s *measuredStore) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	start := time.Now()
	c, err := s.st.Conversation(ctx, id)
	s.done(opConversation, start, err)
	return c, err
}

func (s *measuredStore) UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	start := time.Now()
	c, ds, err := s.st.UpdateMembers(ctx, id, now, fn)
	s.done(opUpdateMembers, start, err)
	return c, ds, err
}

func (s *measuredStore) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	start := time.Now()
	res, err := s.st.AppendMessage(ctx, m)
	s.done(opAppendMessage, start, err)
	if err == nil && res.Created {
		s.m.messageStored(m.Sender.App())
	}
	return res, err
}

func (s *measuredStore) Messages(ctx context.Context, conversationID string, before int64, limit int) ([]chat.Message, error) {
	start := time.Now()
	list, err := s.st.Messages(ctx, conversationID, before, limit)
	s.done(opMessages, start, err)
	return list, err
}

func (s *measuredStore) MarkRead(ctx context.Context, conversationID string, reader chat.Address, seq int64) (int64, []chat.Delivery, error) {
	start := time.Now()
	n, ds, err := s.st.MarkRead(ctx, conversationID, reader, seq)
	s.done(opMarkRead, start, err)
	return n, ds, err
}

func (s *measuredStore) Conversations(ctx context.Context, user chat.Address, page *store.Page, limit int) ([]chat.Summary, *store.Page, error) {
	start := time.Now()
	list, next, err := s.st.Conversations(ctx, user, page, limit)
	s.done(opConversations, start, err)
	return list, next, err
}

func (s *measuredStore) Updates(ctx context.Context, user chat.Address, after int64, limit int) ([]chat.Update, error) {
	start := time.Now()
	list, err := s.st.Updates(ctx, user, after, limit)
	s.done(opUpdates, start, err)
	return list, err
}

func (s *measuredStore) Block(ctx context.Context, blocker, blocked chat.Address) error {
	start := time.Now()
	err := s.st.Block(ctx, blocker, blocked)
	s.done(opBlock, start, err)
	return err
}

func (s *measuredStore) Unblock(ctx context.Context, blocker, blocked chat.Address) error {
	start := time.Now()
	err := s.st.Unblock(ctx, blocker, blocked)
	s.done(opUnblock, start, err)
	return err
}

func (s *measuredStore) Blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error) {
	start := time.Now()
	b, err := s.st.Blocked(ctx, blocker, blocked)
	s.done(opBlocked, start, err)
	return b, err
}

func (s *measuredStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.st.Ping(ctx)
	s.done(opPing, start, err)
	return err
}

func (s *measuredStore) Close() error { return s.st.Close() }

// Checkpoint passes the call on to a store that can checkpoint.
func (s *measuredStore) Checkpoint(ctx context.Context, dir string) error {
	cp, ok := s.st.(store.Checkpointer)
	if !ok {
		return fmt.Errorf("metrics: the store %T cannot checkpoint: %w", s.st, errors.ErrUnsupported)
	}
	start := time.Now()
	err := cp.Checkpoint(ctx, dir)
	s.done(opCheckpoint, start, err)
	return err
}
