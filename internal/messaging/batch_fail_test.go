package messaging

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/bus/localbus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
)

// failingBatcher is a memstore whose AppendMessages fails, or hangs until
// its context ends when hang is set.
type failingBatcher struct {
	*memstore.Store
	hang  bool
	calls int
}

func (f *failingBatcher) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	f.calls++
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("failing store: %w", store.ErrUnavailable)
}

// TestSendBatchStoreFailure: when the batch write fails (an error,
// or the store deadline), every valid send gets unavailable, the invalid
// ones keep their own error, nothing is stored or published, and the
// Observer sees each send once.
func TestSendBatchStoreFailure(t *testing.T) {
	for _, hang := range []bool{false, true} {
		t.Run(fmt.Sprint("hang=", hang), func(t *testing.T) {
			ctx := context.Background()
			fb := &failingBatcher{Store: memstore.New(), hang: hang}
			b := localbus.New()
			defer b.Close()
			obs := &recordingObserver{}
			s := New(Config{Store: fb, Bus: b, Observer: obs, StoreTimeout: 50 * time.Millisecond})
			const alice, bob = chat.Address("messenger:alice"), chat.Address("messenger:bob")
			c, got := converse(t, s, b, alice, bob)
			res := s.SendBatch(ctx, alice, []SendRequest{
				{ConversationID: c.ID, ClientID: "a", Body: "one"},
				{ConversationID: c.ID, ClientID: "b", Body: ""},
				{ConversationID: c.ID, ClientID: "c", Body: "three"},
			})
			want := []string{chat.Unavailable, chat.InvalidArgument, chat.Unavailable}
			for i, w := range want {
				if code := chat.ErrorCode(res[i].Err); res[i].Err == nil || code != w {
					t.Errorf("send %d: %v, want %s", i, res[i].Err, w)
				}
			}
			if fb.calls != 1 {
				t.Errorf("%d batch writes, want 1", fb.calls)
			}
			if cv, err := fb.Conversation(ctx, c.ID); err != nil || cv.LastSeq != 0 {
				t.Errorf("LastSeq %d (%v), want nothing stored", cv.LastSeq, err)
			}
			got.mu.Lock()
			n := len(got.list)
			got.mu.Unlock()
			if n != 0 {
				t.Errorf("bob's bus saw %d events of a failed batch", n)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.sends) != 3 {
				t.Fatalf("observer saw %d sends, want 3", len(obs.sends))
			}
			for i, w := range want {
				if obs.sends[i].code != w || obs.sends[i].app != "messenger" {
					t.Errorf("observed send %d: %+v, want code %s", i, obs.sends[i], w)
				}
			}
		})
	}
}

// TestSendBatchRepeatThenPublishOrder: a batch mixing new sends with
// repeats publishes only the new ones, once each, in seq order, with the
// recipient's cursors consecutive.
func TestSendBatchRepeatThenPublishOrder(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	b := localbus.New()
	defer b.Close()
	s := New(Config{Store: st, Bus: b})
	const alice, bob = chat.Address("messenger:alice"), chat.Address("messenger:bob")
	c, got := converse(t, s, b, alice, bob)
	var rs []SendRequest
	for i := range 64 {
		rs = append(rs, SendRequest{ConversationID: c.ID, ClientID: fmt.Sprint("k", i%40), Body: fmt.Sprint("m", i)})
	}
	res := s.SendBatch(ctx, alice, rs)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("send %d: %v", i, r.Err)
		}
		first := i % 40
		if r.Sent.Message.Seq != int64(first+1) || r.Sent.Message.Body != fmt.Sprint("m", first) || r.Sent.Created != (i < 40) {
			t.Errorf("send %d: seq %d body %q created %v", i, r.Sent.Message.Seq, r.Sent.Message.Body, r.Sent.Created)
		}
		if i >= 40 && r.Sent.Cursor != res[first].Sent.Cursor {
			t.Errorf("send %d: cursor %d, its first had %d", i, r.Sent.Cursor, res[first].Sent.Cursor)
		}
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	var seqs []int64
	var last int64
	for _, e := range got.list {
		if e.Update.Type != chat.UpdateMessage {
			continue
		}
		seqs = append(seqs, e.Update.Message.Seq)
		if last != 0 && e.Update.Cursor != last+1 {
			t.Errorf("bob's cursor %d after %d", e.Update.Cursor, last)
		}
		last = e.Update.Cursor
	}
	if len(seqs) != 40 {
		t.Fatalf("bob saw %d messages, want 40", len(seqs))
	}
	for i, q := range seqs {
		if q != int64(i+1) {
			t.Fatalf("bob saw seqs %v", seqs)
		}
	}
}
