package faultstore

import (
	"context"
	"errors"
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
