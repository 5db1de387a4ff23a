package reliability

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/faultstore"
)

// A store that fails, then hangs, then loses its answers after committing:
// every call answers 503 (with Retry-After) within the store timeout,
// nothing is half-written, and once the store is back the Go client's
// outbox has delivered every message exactly once, in both users' streams
// with no gap.
func TestStoreFaultsQuick503NoPartialWritesFullRecovery(t *testing.T) {
	const storeTimeout = 300 * time.Millisecond
	n := newNode(t, nodeOpts{storeTimeout: storeTimeout})
	ctx := context.Background()
	n.app("a")
	aliceTok, bobTok := n.token("a", "alice"), n.token("a", "bob")
	opts := &client.Options{HTTPClient: n.hc, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	alice := client.New(n.base, aliceTok, opts)
	conv, _, err := alice.CreateConversation(ctx, []string{"a:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}
	stream, err := alice.Connect(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	events := drainEvents(stream)
	sendPath := "/v1/conversations/" + conv.ID + "/messages"

	var outbox []*client.Outgoing
	// bob's REST sends refused during a fault: client id -> whether the
	// store may hold it (only when the answer was lost after the commit).
	refused := map[string]bool{}
	phases := []struct {
		name  string
		fault faultstore.Fault
		// bound is how soon a refused call must be answered.
		bound     time.Duration
		committed bool
	}{
		{"errors", faultstore.Fault{Err: store.ErrUnavailable}, time.Second, false},
		{"latency beyond the timeout", faultstore.Fault{Delay: time.Minute}, storeTimeout + time.Second, false},
		{"answers lost after the commit", faultstore.Fault{Err: store.ErrUnavailable, AfterWrite: true, Ops: []string{"AppendMessage", "AppendMessages"}}, time.Second, true},
	}
	for p, ph := range phases {
		n.fs.Set(ph.fault)
		for i := range 5 {
			o, err := stream.Send(ctx, conv.ID, fmt.Sprintf("stream %s %d", ph.name, i), nil)
			if err != nil {
				t.Fatal(err)
			}
			outbox = append(outbox, o)
		}
		for i := range 3 {
			id := fmt.Sprintf("bob-%d-%d", p, i)
			status, h, took := n.post(sendPath, bobTok, `{"client_id":"`+id+`","body":"from bob"}`)
			if status != 503 {
				t.Fatalf("%s: bob's send answered %d, want 503", ph.name, status)
			}
			if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("%s: Retry-After %q", ph.name, h.Get("Retry-After"))
			}
			if took > ph.bound {
				t.Errorf("%s: the 503 took %v, want at most %v", ph.name, took, ph.bound)
			}
			t.Logf("%s: 503 in %v", ph.name, took)
			refused[id] = ph.committed
		}
		if ph.name != "answers lost after the commit" {
			status, _, took := n.post(sendPath, bobTok, `{"client_id":"probe","body":"x"}`)
			if status != 503 || took > ph.bound {
				t.Errorf("%s: a further send answered %d in %v", ph.name, status, took)
			}
		}
	}
	// Nothing of what was refused before the lost-answer phase is stored:
	// look at the store itself, past the fault.
	n.fs.Set(faultstore.Fault{Err: store.ErrUnavailable, AfterWrite: true, Ops: []string{"AppendMessage", "AppendMessages"}})
	stored, err := n.svc.Store().Messages(ctx, conv.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range stored {
		if committed, ok := refused[m.ClientID]; ok && !committed {
			t.Errorf("bob's refused send %s is stored", m.ClientID)
		}
		if m.ClientID == "probe" {
			t.Errorf("the refused probe is stored")
		}
	}

	n.fs.Clear()
	// Recovery: the outbox delivers everything; bob sends his refused
	// messages again with the same client ids.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, o := range outbox {
		if _, err := o.Wait(wctx); err != nil {
			t.Fatalf("outbox message %s: %v", o.ClientID, err)
		}
	}
	for id, committed := range refused {
		status, _, _ := n.post(sendPath, bobTok, `{"client_id":"`+id+`","body":"from bob"}`)
		want := 201
		if committed {
			want = 200 // stored before; the first answer again
		}
		if status != want {
			t.Errorf("bob's %s sent again: %d, want %d", id, status, want)
		}
	}

	want := len(outbox) + len(refused)
	msgs, err := alice.History(ctx, conv.ID, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != want {
		t.Errorf("history holds %d messages, want %d", len(msgs), want)
	}
	seen := map[string]bool{}
	for i, m := range msgs {
		if seen[m.ClientID] {
			t.Errorf("client id %s stored twice", m.ClientID)
		}
		seen[m.ClientID] = true
		if m.Seq != int64(len(msgs)-i) {
			t.Errorf("history position %d has seq %d: a gap", i, m.Seq)
		}
	}
	for _, o := range outbox {
		if !seen[o.ClientID] {
			t.Errorf("outbox message %s is not stored", o.ClientID)
		}
	}
	// Each stream holds the conversation and each message once, cursors
	// without a gap: no update is missing or half-written.
	for _, tok := range []string{aliceTok, bobTok} {
		page, err := client.New(n.base, tok, opts).Sync(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		msgsSeen := 0
		for i, u := range page.Updates {
			if u.Cursor != int64(i+1) {
				t.Fatalf("stream cursor %d at position %d", u.Cursor, i)
			}
			if u.Type == "message" {
				msgsSeen++
			}
		}
		if msgsSeen != want {
			t.Errorf("a stream holds %d message updates, want %d", msgsSeen, want)
		}
	}
	// alice's live stream saw each message once.
	waitFor(t, "alice's stream to show every message", 10*time.Second, func() bool {
		c := 0
		for _, u := range events.snapshot() {
			if u.Type == "message" {
				c++
			}
		}
		return c >= want
	})
	ids := map[string]int{}
	for _, u := range events.snapshot() {
		if u.Type == "message" {
			ids[u.Message.ClientID]++
		}
	}
	for id, c := range ids {
		if c != 1 {
			t.Errorf("alice's stream delivered %s %d times", id, c)
		}
	}
	if len(ids) != want {
		t.Errorf("alice's stream delivered %d messages, want %d", len(ids), want)
	}
	if n.fs.Injected() == 0 {
		t.Fatal("no fault was injected")
	}
}
