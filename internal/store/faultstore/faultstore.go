// Package faultstore wraps a store.Store and injects faults on demand:
// errors, latency, and answers lost after a write committed. The fault
// suite uses it to prove that a failing or slow store gives quick 503s,
// leaves nothing half-written, and that service recovers fully once the
// fault is lifted.
//
// Faults apply to the calls made after Set, until Set again or Clear.
//
// Store also implements store.BatchAppender, so that the Service takes its
// batch path (one AppendMessages per client's pipelined sends) under
// faults as it does over the bare store; with an inner store that is not a
// BatchAppender, AppendMessages fails rather than append one by one, which
// would break the all-or-nothing contract.
package faultstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// Fault describes what the affected calls do.
type Fault struct {
	// Delay holds each call this long (or until its context ends, which
	// then fails the call with the context's error) before anything else.
	Delay time.Duration
	// Err fails each call with this error: before the call reaches the
	// inner store, or, with AfterWrite, after the inner store completed it
	// (an answer lost after the commit).
	Err        error
	AfterWrite bool
	// Ops names the methods affected ("AppendMessage", "AppendMessages",
	// "Ping", ...). Empty: every method but Close.
	Ops []string
}

// Store is a store.Store with injectable faults. Safe for concurrent use.
type Store struct {
	store.Store

	mu    sync.Mutex // guards fault
	fault *Fault

	injected atomic.Int64
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.BatchAppender = (*Store)(nil)
)

// New wraps s; no fault is set.
func New(s store.Store) *Store { return &Store{Store: s} }

// Set makes the calls from now on suffer f.
func (s *Store) Set(f Fault) {
	s.mu.Lock()
	s.fault = &f
	s.mu.Unlock()
}

// Clear lifts the fault.
func (s *Store) Clear() {
	s.mu.Lock()
	s.fault = nil
	s.mu.Unlock()
}

// Injected returns how many calls suffered a fault so far.
func (s *Store) Injected() int64 { return s.injected.Load() }

// before runs the fault's delay and, unless the error comes after the
// write, its error. It returns the fault for after.
func (s *Store) before(ctx context.Context, op string) (*Fault, error) {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f == nil || (len(f.Ops) > 0 && !slices.Contains(f.Ops, op)) {
		return nil, nil
	}
	s.injected.Add(1)
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if f.Err != nil && !f.AfterWrite {
		return nil, f.Err
	}
	return f, nil
}

// after returns the fault's error for a call that went through.
func after(f *Fault, err error) error {
	if err == nil && f != nil && f.Err != nil && f.AfterWrite {
		return f.Err
	}
	return err
}

func (s *Store) CreateApp(ctx context.Context, app chat.App) error {
	f, err := s.before(ctx, "CreateApp")
	if err != nil {
		return err
	}
	return after(f, s.Store.CreateApp(ctx, app))
}

func (s *Store) App(ctx context.Context, id string) (chat.App, error) {
	f, err := s.before(ctx, "App")
	if err != nil {
		return chat.App{}, err
	}
	a, err := s.Store.App(ctx, id)
	return a, after(f, err)
}

func (s *Store) Apps(ctx context.Context) ([]chat.App, error) {
	f, err := s.before(ctx, "Apps")
	if err != nil {
		return nil, err
	}
	l, err := s.Store.Apps(ctx)
	return l, after(f, err)
}

func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error) {
	f, err := s.before(ctx, "UpdateApp")
	if err != nil {
		return chat.App{}, err
	}
	a, err := s.Store.UpdateApp(ctx, id, fn)
	return a, after(f, err)
}

func (s *Store) CreateConversation(ctx context.Context, c chat.Conversation) (chat.Conversation, []chat.Delivery, bool, error) {
	f, err := s.before(ctx, "CreateConversation")
	if err != nil {
		return chat.Conversation{}, nil, false, err
	}
	conv, ds, created, err := s.Store.CreateConversation(ctx, c)
	return conv, ds, created, after(f, err)
}

func (s *Store) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	f, err := s.before(ctx, "Conversation")
	if err != nil {
		return chat.Conversation{}, err
	}
	c, err := s.Store.Conversation(ctx, id)
	return c, after(f, err)
}

func (s *Store) UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	f, err := s.before(ctx, "UpdateMembers")
	if err != nil {
		return chat.Conversation{}, nil, err
	}
	c, ds, err := s.Store.UpdateMembers(ctx, id, now, fn)
	return c, ds, after(f, err)
}

func (s *Store) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	f, err := s.before(ctx, "AppendMessage")
	if err != nil {
		return store.Appended{}, err
	}
	a, err := s.Store.AppendMessage(ctx, m)
	return a, after(f, err)
}

// AppendMessages is the inner store's, with the faults of op
// "AppendMessages". The inner store must be a store.BatchAppender: else it
// answers an error wrapping store.ErrUnavailable and stores nothing.
func (s *Store) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	f, err := s.before(ctx, "AppendMessages")
	if err != nil {
		return nil, err
	}
	b, ok := s.Store.(store.BatchAppender)
	if !ok {
		return nil, fmt.Errorf("faultstore: the inner store %T cannot append a batch: %w", s.Store, store.ErrUnavailable)
	}
	l, err := b.AppendMessages(ctx, ms)
	return l, after(f, err)
}

func (s *Store) Messages(ctx context.Context, conversationID string, before int64, limit int) ([]chat.Message, error) {
	f, err := s.before(ctx, "Messages")
	if err != nil {
		return nil, err
	}
	l, err := s.Store.Messages(ctx, conversationID, before, limit)
	return l, after(f, err)
}

func (s *Store) MarkRead(ctx context.Context, conversationID string, reader chat.Address, seq int64) (int64, []chat.Delivery, error) {
	f, err := s.before(ctx, "MarkRead")
	if err != nil {
		return 0, nil, err
	}
	n, ds, err := s.Store.MarkRead(ctx, conversationID, reader, seq)
	return n, ds, after(f, err)
}

func (s *Store) Conversations(ctx context.Context, user chat.Address, page *store.Page, limit int) ([]chat.Summary, *store.Page, error) {
	f, err := s.before(ctx, "Conversations")
	if err != nil {
		return nil, nil, err
	}
	l, next, err := s.Store.Conversations(ctx, user, page, limit)
	return l, next, after(f, err)
}

func (s *Store) Updates(ctx context.Context, user chat.Address, afterCursor int64, limit int) ([]chat.Update, error) {
	f, err := s.before(ctx, "Updates")
	if err != nil {
		return nil, err
	}
	l, err := s.Store.Updates(ctx, user, afterCursor, limit)
	return l, after(f, err)
}

func (s *Store) Block(ctx context.Context, blocker, blocked chat.Address) error {
	f, err := s.before(ctx, "Block")
	if err != nil {
		return err
	}
	return after(f, s.Store.Block(ctx, blocker, blocked))
}

func (s *Store) Unblock(ctx context.Context, blocker, blocked chat.Address) error {
	f, err := s.before(ctx, "Unblock")
	if err != nil {
		return err
	}
	return after(f, s.Store.Unblock(ctx, blocker, blocked))
}

func (s *Store) Blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error) {
	f, err := s.before(ctx, "Blocked")
	if err != nil {
		return false, err
	}
	b, err := s.Store.Blocked(ctx, blocker, blocked)
	return b, after(f, err)
}

func (s *Store) Ping(ctx context.Context) error {
	f, err := s.before(ctx, "Ping")
	if err != nil {
		return err
	}
	return after(f, s.Store.Ping(ctx))
}
