// Package bustest is a conformance suite for bus.Bus implementations. Each
// case runs in a subtest on a fresh bus from the factory. Delivery may be
// asynchronous (a network bus), so the suite awaits events with a deadline
// rather than expecting them on return from Publish.
package bustest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// Wait bounds how long the suite waits for an event that should arrive.
const Wait = 5 * time.Second

// quiet is how long the suite watches for an event that should not arrive.
// A bus that delivers late would pass; the positive cases catch that kind.
const quiet = 100 * time.Millisecond

// Run runs the suite against buses made by newBus. The suite closes each bus
// it makes.
func Run(t *testing.T, newBus func(t *testing.T) bus.Bus) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b bus.Bus)
	}{
		{"DeliversToSubscriber", testDelivers},
		{"OnlyTheUsersEvents", testOnlyOwnUser},
		{"ManySubscribersPerUser", testManySubscribers},
		{"OrderPerPublisher", testOrder},
		{"CancelStopsDeliveryAndIsIdempotent", testCancel},
		{"Typing", testTyping},
		{"CloseFailsLaterCalls", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus(t)
			t.Cleanup(func() { b.Close() })
			tc.fn(t, b)
		})
	}
}

// recorder collects events delivered to one subscription.
type recorder struct {
	mu     sync.Mutex
	events []bus.Event
	signal chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) fn(e bus.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// waitN waits until at least n events have arrived and returns them.
func (r *recorder) waitN(t *testing.T, n int) []bus.Event {
	t.Helper()
	deadline := time.NewTimer(Wait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got := append([]bus.Event(nil), r.events...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.signal:
		case <-deadline.C:
			t.Fatalf("got %d events within %v, want %d", len(got), Wait, n)
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func update(user chat.Address, cursor int64) bus.Event {
	return bus.Event{User: user, Update: &chat.Update{Cursor: cursor, Type: chat.UpdateRead, ConversationID: "c1", Reader: user, Seq: cursor}}
}

func subscribe(t *testing.T, b bus.Bus, user chat.Address, r *recorder) func() {
	t.Helper()
	cancel, err := b.Subscribe(user, r.fn)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", user, err)
	}
	t.Cleanup(cancel)
	return cancel
}

func publish(t *testing.T, b bus.Bus, events ...bus.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), events...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func testDelivers(t *testing.T, b bus.Bus) {
	alice := chat.Address("a:alice")
	r := newRecorder()
	subscribe(t, b, alice, r)
	publish(t, b, update(alice, 1))
	got := r.waitN(t, 1)
	if len(got) != 1 || got[0].User != alice || got[0].Update == nil || got[0].Update.Cursor != 1 {
		t.Fatalf("got %+v, want alice's update with cursor 1", got)
	}
}

func testOnlyOwnUser(t *testing.T, b bus.Bus) {
	alice, bob := chat.Address("a:alice"), chat.Address("b:bob")
	ra, rb := newRecorder(), newRecorder()
	subscribe(t, b, alice, ra)
	subscribe(t, b, bob, rb)
	publish(t, b, update(alice, 1), update(bob, 1), update(alice, 2))
	ga := ra.waitN(t, 2)
	gb := rb.waitN(t, 1)
	for _, e := range ga {
		if e.User != alice {
			t.Errorf("alice got %s's event", e.User)
		}
	}
	for _, e := range gb {
		if e.User != bob {
			t.Errorf("bob got %s's event", e.User)
		}
	}
	// A user nobody subscribed to is not an error.
	publish(t, b, update("c:carol", 1))
	time.Sleep(quiet)
	if ra.count() != 2 || rb.count() != 1 {
		t.Fatalf("after publishing to carol: alice has %d, bob %d events; want 2 and 1", ra.count(), rb.count())
	}
}

func testManySubscribers(t *testing.T, b bus.Bus) {
	alice := chat.Address("a:alice")
	rs := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	for _, r := range rs {
		subscribe(t, b, alice, r)
	}
	publish(t, b, update(alice, 1), update(alice, 2))
	for i, r := range rs {
		if got := r.waitN(t, 2); len(got) != 2 {
			t.Errorf("subscriber %d got %d events, want 2", i, len(got))
		}
	}
}

func testOrder(t *testing.T, b bus.Bus) {
	alice := chat.Address("a:alice")
	r := newRecorder()
	subscribe(t, b, alice, r)
	const n = 200
	for i := 1; i <= n; i++ {
		publish(t, b, update(alice, int64(i)))
	}
	got := r.waitN(t, n)
	for i, e := range got {
		if e.Update.Cursor != int64(i+1) {
			t.Fatalf("event %d has cursor %d, want %d (publication order)", i, e.Update.Cursor, i+1)
		}
	}
}

func testCancel(t *testing.T, b bus.Bus) {
	alice := chat.Address("a:alice")
	r1, r2 := newRecorder(), newRecorder()
	cancel1 := subscribe(t, b, alice, r1)
	subscribe(t, b, alice, r2)
	publish(t, b, update(alice, 1))
	r1.waitN(t, 1)
	r2.waitN(t, 1)
	cancel1()
	cancel1() // idempotent
	publish(t, b, update(alice, 2))
	r2.waitN(t, 2)
	time.Sleep(quiet)
	if n := r1.count(); n != 1 {
		t.Fatalf("cancelled subscriber got %d events, want 1", n)
	}
}

func testTyping(t *testing.T, b bus.Bus) {
	bob := chat.Address("b:bob")
	r := newRecorder()
	subscribe(t, b, bob, r)
	publish(t, b, bus.Event{User: bob, Typing: &bus.Typing{ConversationID: "c1", From: "a:alice"}})
	got := r.waitN(t, 1)
	if got[0].Typing == nil || got[0].Typing.From != "a:alice" || got[0].Typing.ConversationID != "c1" || got[0].Update != nil {
		t.Fatalf("got %+v, want alice typing in c1", got[0])
	}
}

func testClose(t *testing.T, b bus.Bus) {
	alice := chat.Address("a:alice")
	r := newRecorder()
	cancel := subscribe(t, b, alice, r)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Publish(context.Background(), update(alice, 1)); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish after Close: %v, want an error wrapping bus.ErrClosed", err)
	}
	if _, err := b.Subscribe(alice, func(bus.Event) {}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want an error wrapping bus.ErrClosed", err)
	}
	cancel() // harmless after Close
	time.Sleep(quiet)
	if n := r.count(); n != 0 {
		t.Fatalf("got %d events after Close, want 0", n)
	}
}
