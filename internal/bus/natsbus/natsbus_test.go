package natsbus_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/bus/bustest"
	"github.com/switchboard-chat/switchboard/internal/bus/natsbus"
	"github.com/switchboard-chat/switchboard/internal/bus/natsbus/natstest"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/netproxy"
)

func newBus(t testing.TB, natsURL, prefix string) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.New(natsURL, &natsbus.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	u := natstest.URL(t)
	bustest.Run(t, func(t *testing.T) bus.Bus { return newBus(t, u, natstest.Prefix()) })
}

// The suite again with two nodes: each case subscribes on one bus and
// publishes on the other.
func TestConformanceAcrossNodes(t *testing.T) {
	u := natstest.URL(t)
	bustest.Run(t, func(t *testing.T) bus.Bus {
		prefix := natstest.Prefix()
		return &pair{sub: newBus(t, u, prefix), pub: newBus(t, u, prefix)}
	})
}

// pair subscribes on one node and publishes on another.
type pair struct{ sub, pub *natsbus.Bus }

func (p *pair) Publish(ctx context.Context, events ...bus.Event) error {
	return p.pub.Publish(ctx, events...)
}

// Subscribe alone must do: an event published on the other node right
// after it returns is delivered.
func (p *pair) Subscribe(user chat.Address, fn func(bus.Event)) (func(), error) {
	return p.sub.Subscribe(user, fn)
}

func (p *pair) Close() error {
	p.sub.Close()
	return p.pub.Close()
}

// recv collects one subscriber's events.
type recv struct {
	mu  sync.Mutex
	evs []bus.Event
	sig chan struct{}
}

func newRecv() *recv { return &recv{sig: make(chan struct{}, 1)} }

func (r *recv) fn(e bus.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
	select {
	case r.sig <- struct{}{}:
	default:
	}
}

func (r *recv) wait(t *testing.T, n int, within time.Duration) []bus.Event {
	t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		got := append([]bus.Event(nil), r.evs...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.sig:
		case <-deadline:
			t.Fatalf("got %d events within %v, want %d", len(got), within, n)
		}
	}
}

// One NATS subscription per user and node, however many local
// subscribers; the last cancel drops it.
func TestOneSubscriptionPerUser(t *testing.T) {
	b := newBus(t, natstest.URL(t), natstest.Prefix())
	alice, bob := chat.Address("a:alice"), chat.Address("b:bob.smith")
	var cancels []func()
	for range 3 {
		c, err := b.Subscribe(alice, func(bus.Event) {})
		if err != nil {
			t.Fatal(err)
		}
		cancels = append(cancels, c)
	}
	cb, err := b.Subscribe(bob, func(bus.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	if n := b.Subscriptions(); n != 2 {
		t.Fatalf("%d NATS subscriptions for 2 users, want 2", n)
	}
	for _, c := range cancels {
		c()
	}
	if n := b.Subscriptions(); n != 1 {
		t.Fatalf("%d NATS subscriptions after alice's last cancel, want 1", n)
	}
	cb()
	if n := b.Subscriptions(); n != 0 {
		t.Fatalf("%d NATS subscriptions after every cancel, want 0", n)
	}
}

// Cut from NATS, a node reconnects by itself, its subscriptions come back,
// and events flow again.
func TestReconnects(t *testing.T) {
	u, err := url.Parse(natstest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy, addr := netproxy.New(t, u.Host)
	prefix := natstest.Prefix()
	viaProxy := newBus(t, "nats://"+addr, prefix)
	direct := newBus(t, u.String(), prefix)
	alice := chat.Address("a:alice")
	r := newRecv()
	cancel, err := viaProxy.Subscribe(alice, r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	if err := viaProxy.Flush(); err != nil {
		t.Fatal(err)
	}
	ev := func(c int64) bus.Event {
		return bus.Event{User: alice, Update: &chat.Update{Cursor: c, Type: chat.UpdateRead, ConversationID: "c", Reader: alice, Seq: c}}
	}
	if err := direct.Publish(t.Context(), ev(1)); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1, 5*time.Second)

	proxy.Cut()
	time.Sleep(300 * time.Millisecond) // let the client notice the cut; it retries every 250ms
	proxy.Restore()
	// Publish until one arrives: events published while the node is away
	// are lost (the sessions backfill those), so keep publishing.
	deadline := time.Now().Add(15 * time.Second)
	for c := int64(2); ; c++ {
		if err := direct.Publish(t.Context(), ev(c)); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		n := len(r.evs)
		r.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event reached the node within 15s of NATS coming back")
		}
		select {
		case <-r.sig:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func BenchmarkPublishDeliver(b *testing.B) {
	u := natstest.URL(b)
	prefix := natstest.Prefix()
	pub, sub := newBus(b, u, prefix), newBus(b, u, prefix)
	alice := chat.Address("a:alice")
	got := make(chan struct{}, 1024)
	cancel, err := sub.Subscribe(alice, func(bus.Event) { got <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	sub.Flush()
	ev := bus.Event{User: alice, Update: &chat.Update{Cursor: 1, Type: chat.UpdateRead, ConversationID: "c", Reader: alice, Seq: 1}}
	for b.Loop() {
		if err := pub.Publish(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}

// The prefix can come with the URL, as on the command line; buses with
// different prefixes do not hear each other.
func TestPrefixInURL(t *testing.T) {
	u := natstest.URL(t)
	prefix := natstest.Prefix()
	fromURL := newBus(t, u+"?prefix="+prefix, "")
	same := newBus(t, u, prefix)
	other := newBus(t, u, natstest.Prefix())
	alice := chat.Address("a:alice")
	r, ro := newRecv(), newRecv()
	for _, s := range []struct {
		b *natsbus.Bus
		r *recv
	}{{fromURL, r}, {other, ro}} {
		cancel, err := s.b.Subscribe(alice, s.r.fn)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
	}
	ev := bus.Event{User: alice, Typing: &bus.Typing{ConversationID: "c", From: "b:bob"}}
	if err := same.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1, 5*time.Second)
	if err := other.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	ro.wait(t, 1, 5*time.Second)
	if err := same.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := fromURL.Flush(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	n := len(r.evs)
	r.mu.Unlock()
	if n != 1 {
		t.Fatalf("the bus with the URL's prefix got %d events, want 1 (none from the other prefix)", n)
	}
	if _, err := natsbus.New(u+"?prefix=bad*prefix", nil); err == nil {
		t.Fatal("New accepted a prefix with a wildcard")
	}
}
