package localbus_test

import (
	"context"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/bus/bustest"
	"github.com/switchboard-chat/switchboard/internal/bus/localbus"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus { return localbus.New() })
}

// After cancel returns, fn is never called again, even with publishers
// racing the cancel. The race detector also checks the subscriber's state.
func TestNoCallAfterCancel(t *testing.T) {
	b := localbus.New()
	defer b.Close()
	alice := chat.Address("a:alice")
	var mu sync.Mutex
	cancelled := false
	bad := 0
	cancel, err := b.Subscribe(alice, func(bus.Event) {
		mu.Lock()
		if cancelled {
			bad++
		}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 500 {
				b.Publish(context.Background(), bus.Event{User: alice, Update: &chat.Update{Cursor: int64(i)}})
			}
		})
	}
	cancel()
	mu.Lock()
	cancelled = true
	mu.Unlock()
	wg.Wait()
	if bad != 0 {
		t.Fatalf("fn called %d times after cancel returned", bad)
	}
	if n := b.Subscribers(alice); n != 0 {
		t.Fatalf("%d subscribers left after cancel, want 0", n)
	}
}

func BenchmarkPublish(b *testing.B) {
	bs := localbus.New()
	defer bs.Close()
	alice := chat.Address("a:alice")
	for range 3 {
		cancel, _ := bs.Subscribe(alice, func(bus.Event) {})
		defer cancel()
	}
	ev := bus.Event{User: alice, Update: &chat.Update{Cursor: 1}}
	b.ReportAllocs()
	for b.Loop() {
		bs.Publish(context.Background(), ev)
	}
}
