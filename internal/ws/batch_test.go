package ws_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

// blockingBatchStore holds the first append (single or batch) until
// released, and keeps the store a store.BatchAppender, so that the sends
// queued behind it take the batch path.
type blockingBatchStore struct {
	store.Store
	b       store.BatchAppender
	once    sync.Once
	entered chan struct{}
	release chan struct{}

	mu      sync.Mutex
	batches []int // sizes of the AppendMessages calls
}

func (s *blockingBatchStore) hold() {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
}

func (s *blockingBatchStore) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	s.hold()
	return s.Store.AppendMessage(ctx, m)
}

func (s *blockingBatchStore) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	s.hold()
	s.mu.Lock()
	s.batches = append(s.batches, len(ms))
	s.mu.Unlock()
	return s.b.AppendMessages(ctx, ms)
}

// TestShutdownAnswersQueuedBatch: sends (and a read) queued behind a
// send in flight when Shutdown begins are all answered, in order, before
// the 1001 close, and they went to the store as a batch.
func TestShutdownAnswersQueuedBatch(t *testing.T) {
	bs := &blockingBatchStore{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, envOpts{wrapStore: func(s store.Store) store.Store {
		bs.Store, bs.b = s, s.(store.BatchAppender)
		return bs
	}})
	conv := twoApps(e)
	var once sync.Once
	release := func() { once.Do(func() { close(bs.release) }) }
	t.Cleanup(release)

	a := e.dial(e.token(alice), 1)
	a.readUntilReady()
	send := func(i int) {
		a.write(map[string]any{"type": "send", "ref": fmt.Sprintf("s%d", i), "conversation_id": conv, "client_id": fmt.Sprintf("c%d", i), "body": fmt.Sprintf("m%d", i)})
	}
	send(0)
	<-bs.entered
	const n = 12
	for i := 1; i < n; i++ {
		if i == 6 {
			a.write(map[string]any{"type": "read", "ref": "s6", "conversation_id": conv, "seq": 1})
			continue
		}
		send(i)
	}
	// The pong comes after every frame before it was handled (queued).
	a.write(map[string]any{"type": "ping", "ref": "p"})
	if f, _ := a.nextOf("pong"); f.Ref != "p" {
		t.Fatalf("pong %s", f.Raw)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.ws.Shutdown(ctx)
	}()
	// A send after Shutdown began is refused, not lost.
	waitFor(t, "the shutdown to begin", 5*time.Second, func() bool {
		_, err := e.tryDial(e.token(carol), 0)
		return err != nil
	})
	a.write(map[string]any{"type": "send", "ref": "late", "conversation_id": conv, "client_id": "late", "body": "late"})
	release()

	var order []string
	answers := map[string]frame{}
	for {
		f, err := a.tryNext(readWait)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
				t.Fatalf("socket ended with %v after %v", err, order)
			}
			break
		}
		if f.Type == "ack" || f.Type == "error" {
			if _, dup := answers[f.Ref]; dup {
				t.Fatalf("%s answered twice", f.Ref)
			}
			answers[f.Ref] = f
			order = append(order, f.Ref)
		}
	}
	var seq int64
	var sendOrder []string
	for _, ref := range order {
		if ref != "late" {
			sendOrder = append(sendOrder, ref)
		}
	}
	for i := range n {
		ref := fmt.Sprintf("s%d", i)
		if i >= len(sendOrder) || sendOrder[i] != ref {
			t.Fatalf("answers in order %v, want s0..s%d in order", order, n-1)
		}
		f := answers[ref]
		if i == 6 {
			if f.Type != "ack" || f.ReadSeq < 1 {
				t.Errorf("read: %s", f.Raw)
			}
			continue
		}
		seq++
		if f.Type != "ack" || f.Message == nil || f.Message.Seq != seq {
			t.Errorf("%s: %s, want seq %d", ref, f.Raw, seq)
		}
	}
	if f, ok := answers["late"]; !ok || f.Type != "error" || f.Error.Code != chat.Unavailable {
		t.Errorf("the send after Shutdown: %s (answered %v)", f.Raw, ok)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if len(bs.batches) == 0 || slices.Max(bs.batches) < 2 {
		t.Errorf("AppendMessages calls of %v messages; the queued sends were not batched", bs.batches)
	}
}

// TestTinyMaxInFlight pipelines many sends and reads through a
// socket that may hold 3 operations: every one is answered once, the sends
// in order, and Shutdown (which waits for the operations) returns.
func TestTinyMaxInFlight(t *testing.T) {
	e := newEnv(t, envOpts{cfg: ws.Config{MaxInFlight: 3}})
	conv := twoApps(e)
	a := e.dial(e.token(alice), 1)
	a.readUntilReady()
	const n = 300
	// Frame i: a read when i%7 == 3; past 250, a send repeating the
	// client id of send i-250 when that one was a send; else a new send.
	isRead := func(i int) bool { return i%7 == 3 }
	isRepeat := func(i int) bool { return i >= 250 && !isRead(i-250) }
	clientID := func(i int) string {
		if isRepeat(i) {
			return fmt.Sprintf("c%d", i-250)
		}
		return fmt.Sprintf("c%d", i)
	}
	go func() {
		for i := range n {
			if isRead(i) {
				a.write(map[string]any{"type": "read", "ref": fmt.Sprintf("s%d", i), "conversation_id": conv, "seq": 1})
				continue
			}
			a.write(map[string]any{"type": "send", "ref": fmt.Sprintf("s%d", i), "conversation_id": conv, "client_id": clientID(i), "body": fmt.Sprintf("m%d", i)})
		}
	}()
	answers := map[string]frame{}
	var seq int64
	next := 0
	for len(answers) < n {
		f := a.next()
		if f.Type != "ack" && f.Type != "error" {
			continue
		}
		if f.Ref != fmt.Sprintf("s%d", next) {
			t.Fatalf("answer %s where s%d was due", f.Ref, next)
		}
		answers[f.Ref] = f
		i := next
		next++
		switch {
		case isRead(i):
			if f.Type != "ack" {
				t.Fatalf("read %d: %s", i, f.Raw)
			}
		case isRepeat(i):
			if f.Type != "ack" || f.Message == nil || f.Message.Body != fmt.Sprintf("m%d", i-250) {
				t.Fatalf("repeat %d: %s", i, f.Raw)
			}
		default:
			seq++
			if f.Type != "ack" || f.Message == nil || f.Message.Seq != seq || f.Message.Body != fmt.Sprintf("m%d", i) {
				t.Fatalf("send %d: %s, want seq %d", i, f.Raw, seq)
			}
		}
	}
	// Shutdown waits for the operations, then closes with 1001; the
	// client reads on so that the close handshake completes.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- e.ws.Shutdown(ctx)
	}()
	if s, _ := a.closeStatus(); s != websocket.StatusGoingAway {
		t.Errorf("closed with %v, want going away", s)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
