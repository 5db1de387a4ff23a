package faultstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
	"github.com/switchboard-chat/switchboard/internal/store/storetest"
)

// Without a fault the wrapper is the store it wraps.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{Open: func(t *testing.T) store.Store { return New(memstore.New()) }})
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	s := New(memstore.New())
	app := chat.App{ID: "a", Interop: []string{}, CreatedAt: time.Unix(1, 0).UTC()}

	s.Set(Fault{Err: store.ErrUnavailable})
	if err := s.CreateApp(ctx, app); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateApp under an error fault: %v", err)
	}
	s.Clear()
	if _, err := s.App(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the failed create wrote something: %v", err)
	}

	// An answer lost after the write: the write stands.
	s.Set(Fault{Err: store.ErrUnavailable, AfterWrite: true, Ops: []string{"CreateApp"}})
	if err := s.CreateApp(ctx, app); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateApp with the answer lost: %v", err)
	}
	if _, err := s.App(ctx, "a"); err != nil {
		t.Fatalf("App (not among Ops) after a lost answer: %v", err)
	}

	// Latency beyond the caller's deadline.
	s.Set(Fault{Delay: time.Hour})
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Ping(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping past its deadline: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Ping took %v with a 50ms deadline", d)
	}
	if n := s.Injected(); n != 3 {
		t.Errorf("Injected = %d, want 3 (two creates, one ping)", n)
	}
}

// AppendMessages suffers the faults of its own op name, and with the
// answer lost after the commit the whole batch stands.
func TestAppendMessagesFaults(t *testing.T) {
	ctx := context.Background()
	s := New(memstore.New())
	now := time.Unix(1, 0).UTC()
	alice, bob := chat.NewAddress("a", "alice"), chat.NewAddress("a", "bob")
	conv := chat.Conversation{ID: chat.DirectID(alice, bob), Kind: chat.Direct,
		Members: []chat.Address{alice, bob}, CreatedAt: now, UpdatedAt: now}
	if _, _, _, err := s.CreateConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	batch := func(ids ...string) []chat.Message {
		ms := make([]chat.Message, len(ids))
		for i, id := range ids {
			ms[i] = chat.Message{ConversationID: conv.ID, Sender: alice, ClientID: id,
				Kind: chat.KindText, Body: id, SentAt: now}
		}
		return ms
	}
	stored := func() []string {
		t.Helper()
		l, err := s.Messages(ctx, conv.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(l))
		for i, m := range l {
			ids[len(l)-1-i] = m.ClientID // Messages is newest first
		}
		return ids
	}

	// A fault on the single append leaves the batch alone.
	s.Set(Fault{Err: store.ErrUnavailable, Ops: []string{"AppendMessage"}})
	if _, err := s.AppendMessages(ctx, batch("1", "2")); err != nil {
		t.Fatalf("AppendMessages under a fault on AppendMessage: %v", err)
	}
	if n := s.Injected(); n != 0 {
		t.Fatalf("Injected = %d after a call not among Ops", n)
	}

	s.Set(Fault{Err: store.ErrUnavailable, Ops: []string{"AppendMessages"}})
	if _, err := s.AppendMessages(ctx, batch("3", "4")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AppendMessages under an error fault: %v", err)
	}
	if got := stored(); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("after a refused batch the store holds %v", got)
	}

	s.Set(Fault{Err: store.ErrUnavailable, AfterWrite: true, Ops: []string{"AppendMessages"}})
	if _, err := s.AppendMessages(ctx, batch("3", "4")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AppendMessages with the answer lost: %v", err)
	}
	if got := stored(); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Fatalf("after a batch whose answer was lost the store holds %v", got)
	}

	s.Set(Fault{Delay: time.Hour, Ops: []string{"AppendMessages"}})
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.AppendMessages(dctx, batch("5")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AppendMessages past its deadline: %v", err)
	}

	s.Clear()
	res, err := s.AppendMessages(ctx, batch("3", "5"))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Created || !res[1].Created || res[1].Message.Seq != 5 {
		t.Fatalf("after the faults: repeat created=%v, new created=%v seq %d", res[0].Created, res[1].Created, res[1].Message.Seq)
	}
	if n := s.Injected(); n != 3 {
		t.Errorf("Injected = %d, want 3", n)
	}
}

// plainStore hides the inner store's AppendMessages.
type plainStore struct{ store.Store }

// Over a store that cannot append a batch, AppendMessages fails and stores
// nothing, rather than append one by one.
func TestAppendMessagesNeedsABatchAppender(t *testing.T) {
	ctx := context.Background()
	inner := memstore.New()
	s := New(plainStore{inner})
	now := time.Unix(1, 0).UTC()
	alice, bob := chat.NewAddress("a", "alice"), chat.NewAddress("a", "bob")
	conv := chat.Conversation{ID: chat.DirectID(alice, bob), Kind: chat.Direct,
		Members: []chat.Address{alice, bob}, CreatedAt: now, UpdatedAt: now}
	if _, _, _, err := s.CreateConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	m := chat.Message{ConversationID: conv.ID, Sender: alice, ClientID: "1", Kind: chat.KindText, Body: "x", SentAt: now}
	if _, err := s.AppendMessages(ctx, []chat.Message{m}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AppendMessages over a store without it: %v", err)
	}
	if l, err := inner.Messages(ctx, conv.ID, 0, 10); err != nil || len(l) != 0 {
		t.Fatalf("the inner store holds %d messages (%v)", len(l), err)
	}
}
