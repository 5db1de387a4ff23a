package ws_test

import (
	"fmt"
	"testing"
)

// With ?merge_acks=true, the ack of each message sent on the socket comes
// in the place of the message's update, marked in_stream, and the update
// does not come on its own: the stream's cursors still run without gap or
// duplicate. A repeated client id, which stores nothing, gets a plain ack;
// the other member and a replay get updates as ever.
func TestMergedAcksStandInForUpdates(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := twoApps(e)
	a, err := e.tryDialQuery(e.token(alice), "after=1&merge_acks=true")
	if err != nil {
		t.Fatal(err)
	}
	b := e.dial(e.token(bob), 1)
	_, ready := a.readUntilReady()
	b.readUntilReady()

	const n = 40
	for i := range n {
		f := map[string]any{"type": "send", "ref": fmt.Sprintf("s%d", i), "conversation_id": conv, "client_id": fmt.Sprintf("c-%d", i), "body": fmt.Sprintf("m%d", i)}
		if i == 20 {
			f["client_id"] = "c-5" // a repeat: nothing stored
		}
		a.write(f)
	}
	answers := map[string]frame{}
	next := ready + 1 // the next cursor due in a's stream
	for len(answers) < n {
		f := a.next()
		switch {
		case f.Type == "update":
			t.Fatalf("an update on the sender's socket, where its ack was due: %s", f.Raw)
		case f.Type == "ack" && f.InStream:
			if f.Cursor != next {
				t.Fatalf("ack in the stream at cursor %d, want %d: %s", f.Cursor, next, f.Raw)
			}
			next++
		case f.Type != "ack":
			t.Fatalf("unexpected frame: %s", f.Raw)
		}
		if _, dup := answers[f.Ref]; dup {
			t.Fatalf("two answers to %s", f.Ref)
		}
		answers[f.Ref] = f
	}
	for i := range n {
		f := answers[fmt.Sprintf("s%d", i)]
		switch {
		case i == 20:
			if f.InStream || f.Message.Seq != 6 || f.Message.Body != "m5" {
				t.Errorf("the repeat of c-5: %s; want a plain ack of seq 6", f.Raw)
			}
		case !f.InStream || f.Message == nil || f.Message.Body != fmt.Sprintf("m%d", i):
			t.Errorf("send %d: %s; want its ack in the stream", i, f.Raw)
		}
	}
	if next != ready+n || e.ws.AcksInStream() != n-1 {
		t.Fatalf("%d acks in the stream (%d counted), want %d", next-ready-1, e.ws.AcksInStream(), n-1)
	}

	// Bob's socket, without the option: every message as an update.
	var got int64
	for got < n-1 {
		f, _ := b.nextOf("update")
		got++
		if f.Update.Message == nil || f.Update.Message.Seq != got {
			t.Fatalf("bob's update %d: %s", got, f.Raw)
		}
	}
	// A replay has no acks to merge: updates, up to where a had got.
	c, err := e.tryDialQuery(e.token(alice), fmt.Sprintf("after=%d&merge_acks=1", ready))
	if err != nil {
		t.Fatal(err)
	}
	ups, end := c.readUntilReady()
	checkOrder(t, ups, ready+1)
	if len(ups) != n-1 || end != next-1 {
		t.Fatalf("replay: %d updates, ready at %d; want %d, %d", len(ups), end, n-1, next-1)
	}
}
