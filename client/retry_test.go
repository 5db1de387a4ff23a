package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

// manualClock is admission's clock, moved by the test.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestRetriesKeepOrder pipelines twice the user's send burst: the server
// refuses the second half with rate_limited, the outbox sends those again
// until they pass, and every message is stored in the order it was handed
// over. (Resent each on its own timer, they would be stored in the order
// the timers fire.)
func TestRetriesKeepOrder(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	adm := admission.New(admission.Config{Now: clock.Now})
	n := startNodeWith(t, ws.Config{}, adm)
	alice, _, conv := pair(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	as := connect(ctx, t, alice)

	const n2 = 40 // the default user burst is 20
	outs := make([]*client.Outgoing, n2)
	for i := range outs {
		var err error
		if outs[i], err = as.Send(ctx, conv, fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The first half passes at once; the rest waits for tokens, which come
	// back as the test moves the clock.
	for i := range n2 / 2 {
		if _, err := outs[i].Wait(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, o := range outs {
			o.Wait(ctx)
		}
	}()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(30 * time.Millisecond):
			clock.Add(150 * time.Millisecond) // about one token at 10/s
		case <-ctx.Done():
			t.Fatal("the refused messages were never stored")
		}
	}
	for i, o := range outs {
		sent, err := o.Result()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if sent.Message.Seq != int64(i+1) || sent.Message.Body != fmt.Sprintf("m%d", i) {
			t.Errorf("message %d (%s) stored as seq %d, want %d", i, sent.Message.Body, sent.Message.Seq, i+1)
		}
	}
}
