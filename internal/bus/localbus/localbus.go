// Package localbus is the in-process Bus: one node, no network. Publish
// hands each event straight to the subscribers of its user on the
// publisher's own goroutine, so delivery is as cheap as a map lookup and a
// function call, and events of one publisher arrive in publication order.
package localbus

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// errClosed wraps bus.ErrClosed, so that callers test with errors.Is.
var errClosed = fmt.Errorf("localbus: %w", bus.ErrClosed)

var _ bus.Bus = (*Bus)(nil)

// Bus is safe for concurrent use. A subscriber's fn is called on the
// publisher's goroutine, never concurrently with itself, and never after its
// cancel has returned; fn must not block and must not call its own cancel.
type Bus struct {
	mu     sync.RWMutex // guards the 2 following fields
	subs   map[chat.Address][]*sub
	closed bool
}

// sub is one subscription. Its slice in Bus.subs is replaced, never
// changed in place, so a publisher may iterate a slice it read under the
// read lock after letting go of the lock.
type sub struct {
	mu   sync.Mutex // held while fn runs; guards dead
	dead bool
	fn   func(bus.Event)
}

// New returns an open Bus.
func New() *Bus {
	return &Bus{subs: make(map[chat.Address][]*sub)}
}

// Publish delivers each event to the current subscribers of its user. It
// never blocks on a subscriber beyond the time its fn takes.
func (b *Bus) Publish(ctx context.Context, events ...bus.Event) error {
	for i := range events {
		b.mu.RLock()
		if b.closed {
			b.mu.RUnlock()
			return errClosed
		}
		list := b.subs[events[i].User]
		b.mu.RUnlock()
		for _, s := range list {
			s.mu.Lock()
			if !s.dead {
				s.fn(events[i])
			}
			s.mu.Unlock()
		}
	}
	return nil
}

// Subscribe registers fn for user's events until cancel is called. cancel is
// idempotent; once it returns, fn is not called again.
func (b *Bus) Subscribe(user chat.Address, fn func(bus.Event)) (cancel func(), err error) {
	s := &sub{fn: fn}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errClosed
	}
	old := b.subs[user]
	list := make([]*sub, len(old), len(old)+1)
	copy(list, old)
	b.subs[user] = append(list, s)
	b.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			if old := b.subs[user]; len(old) > 0 {
				list := slices.DeleteFunc(slices.Clone(old), func(x *sub) bool { return x == s })
				if len(list) == 0 {
					delete(b.subs, user)
				} else {
					b.subs[user] = list
				}
			}
			b.mu.Unlock()
			// Wait out a delivery in progress, then mark the sub dead so
			// that a publisher holding the old slice skips it.
			s.mu.Lock()
			s.dead = true
			s.mu.Unlock()
		})
	}, nil
}

// Close stops delivery: Publish and Subscribe fail from now on, and no fn
// is called once Close has returned. Calling a cancel afterwards is harmless.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	// Outside b.mu, like cancel, so that an fn that publishes cannot
	// deadlock against Close.
	for _, list := range subs {
		for _, s := range list {
			s.mu.Lock()
			s.dead = true
			s.mu.Unlock()
		}
	}
	return nil
}

// Subscribers returns the number of live subscriptions of user, for tests
// and metrics.
func (b *Bus) Subscribers(user chat.Address) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs[user])
}
