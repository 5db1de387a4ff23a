// Package deadline gives a context a timeout without a timer of its own.
//
// context.WithTimeout allocates a timer, a cancel context and its link to
// the parent, and arms and stops the timer: about a microsecond and 300
// bytes, paid by every store call, bus publish and WebSocket operation,
// many thousands of times a second, for timeouts of seconds that almost
// never fire. Here the contexts whose deadlines end in the same slot of
// Slot share one channel, closed by one timer when the slot ends, so a
// timeout costs one small allocation. A deadline is rounded up to the end
// of its slot: it may fire up to Slot late, which suits timeouts of
// seconds, not of milliseconds.
package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Slot is the granularity of the deadlines.
const Slot = 50 * time.Millisecond

// WithTimeout is context.WithTimeout(parent, d), with the deadline rounded
// up to the end of its slot. When parent can be cancelled other than by a
// deadline of this package (an HTTP request's context, say), it falls back
// to context.WithTimeout, so that the parent's cancellation still reaches
// the child. The cancel function releases nothing; call it all the same.
func WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	p, ours := parent.(*ctx)
	if !ours && parent.Done() != nil {
		return context.WithTimeout(parent, d)
	}
	s := slotOf(time.Now().Add(d))
	if ours && p.s.end <= s.end {
		// The parent ends first, or with this slot: it is the child.
		return parent, noop
	}
	return &ctx{parent: parent, s: s}, noop
}

func noop() {}

// ctx is a context whose deadline is the end of slot s. Its parent is a
// context that is never done (Background) or another ctx that ends later.
type ctx struct {
	parent context.Context
	s      *slot
}

func (c *ctx) Deadline() (time.Time, bool) { return time.Unix(0, c.s.end), true }
func (c *ctx) Done() <-chan struct{}       { return c.s.done }
func (c *ctx) Value(key any) any           { return c.parent.Value(key) }

func (c *ctx) Err() error {
	if c.s.ended() {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *ctx) String() string {
	return "deadline.WithTimeout(" + time.Unix(0, c.s.end).Format(time.RFC3339Nano) + ")"
}

// A slot is one Slot of time; its channel is closed when it ends.
type slot struct {
	end  int64 // Unix nanoseconds
	done chan struct{}
}

var (
	mu    sync.Mutex
	slots = map[int64]*slot{} // the slots not yet ended, by end
	// last is the slot most recently asked for: the calls of one timeout
	// from one place ask for the same slot Slot long, so most calls end
	// here without the lock.
	last atomic.Pointer[slot]
)

// slotOf returns the slot in which t falls, making it if need be.
func slotOf(t time.Time) *slot {
	end := (t.UnixNano()/int64(Slot) + 1) * int64(Slot)
	if s := last.Load(); s != nil && s.end == end && !s.ended() {
		return s
	}
	mu.Lock()
	defer mu.Unlock()
	// A slot of the map has not ended: it leaves the map before its
	// channel is closed. (One of last may have, if the wall clock went
	// back.)
	s := slots[end]
	if s == nil {
		s = &slot{end: end, done: make(chan struct{})}
		slots[end] = s
		time.AfterFunc(time.Until(time.Unix(0, end)), func() {
			mu.Lock()
			delete(slots, end)
			mu.Unlock()
			close(s.done)
		})
	}
	last.Store(s)
	return s
}

func (s *slot) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}
