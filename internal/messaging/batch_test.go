package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/bus/localbus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// oneByOne hides a store's AppendMessages, so that the Service falls back
// to one AppendMessage per message.
type oneByOne struct{ store.Store }

// TestSendBatch checks SendBatch against Send's rules on a store that
// appends a batch in one write (Pebble, memstore) and on one that does not.
func TestSendBatch(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"pebble": func(t *testing.T) store.Store {
			s, err := pebblestore.Open(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"memstore":   func(*testing.T) store.Store { return memstore.New() },
		"one-by-one": func(*testing.T) store.Store { return oneByOne{memstore.New()} },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			defer st.Close()
			testSendBatch(t, st)
		})
	}
}

// converse signs alice and bob in, makes their conversation, and records
// what the bus delivers to bob.
func converse(t *testing.T, s *Service, b bus.Bus, alice, bob chat.Address) (chat.Conversation, *events) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []chat.Address{alice, bob} {
		if _, err := s.DevLogin(ctx, a.App(), a.User()); err != nil {
			t.Fatal(err)
		}
	}
	c, _, err := s.CreateConversation(ctx, alice, []string{string(bob)}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := &events{}
	cancel, err := b.Subscribe(bob, got.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return c, got
}

// events records what the bus delivers to one user, in order.
type events struct {
	mu   sync.Mutex
	list []bus.Event
}

func (e *events) add(ev bus.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
}

func testSendBatch(t *testing.T, st store.Store) {
	ctx := context.Background()
	b := localbus.New()
	defer b.Close()
	// A stopped clock: no token comes back during the test.
	stopped := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	adm := admission.New(admission.Config{Now: func() time.Time { return stopped }})
	s := New(Config{Store: st, Bus: b, Admission: adm})
	const alice, bob = chat.Address("messenger:alice"), chat.Address("instagram:bob")
	c, got := converse(t, s, b, alice, bob)

	first, err := s.Send(ctx, alice, SendRequest{ConversationID: c.ID, ClientID: "c0", Body: "first"})
	if err != nil {
		t.Fatal(err)
	}
	// A repeat of c0, an invalid send, a new one, a repeat inside the
	// batch, another new one.
	rs := []SendRequest{
		{ConversationID: c.ID, ClientID: "c0", Body: "ignored"},
		{ConversationID: c.ID, ClientID: "c1", Body: ""},
		{ConversationID: c.ID, ClientID: "c2", Body: "two"},
		{ConversationID: c.ID, ClientID: "c2", Body: "ignored too"},
		{ConversationID: c.ID, ClientID: "c3", Body: "three", Meta: []byte(`{"k": 1}`)},
		{ConversationID: "d:other", ClientID: "c4", Body: "elsewhere"},
	}
	res := s.SendBatch(ctx, alice, rs)
	if len(res) != len(rs) {
		t.Fatalf("%d results for %d sends", len(res), len(rs))
	}
	want := []struct {
		code    string
		seq     int64
		body    string
		created bool
	}{
		{"", 1, "first", false},
		{chat.InvalidArgument, 0, "", false},
		{"", 2, "two", true},
		{"", 2, "two", false},
		{"", 3, "three", true},
		{chat.InvalidArgument, 0, "", false},
	}
	for i, w := range want {
		r := res[i]
		if code := chat.ErrorCode(r.Err); r.Err != nil && code != w.code || r.Err == nil && w.code != "" {
			t.Errorf("send %d: error %v, want code %q", i, r.Err, w.code)
			continue
		}
		if w.code != "" {
			continue
		}
		if r.Sent.Message.Seq != w.seq || r.Sent.Message.Body != w.body || r.Sent.Created != w.created {
			t.Errorf("send %d: seq %d body %q created %v, want %d %q %v", i, r.Sent.Message.Seq, r.Sent.Message.Body, r.Sent.Created, w.seq, w.body, w.created)
		}
		if w.created != (r.Sent.MessageJSON != nil) {
			t.Errorf("send %d: MessageJSON %q, created %v", i, r.Sent.MessageJSON, w.created)
		}
	}
	if res[0].Sent.Cursor != first.Cursor {
		t.Errorf("the repeat of c0 answers cursor %d, the first send had %d", res[0].Sent.Cursor, first.Cursor)
	}
	if res[3].Sent.Cursor != res[2].Sent.Cursor {
		t.Errorf("the repeat inside the batch answers cursor %d, its first had %d", res[3].Sent.Cursor, res[2].Sent.Cursor)
	}
	if string(res[4].Sent.Message.Meta) != `{"k":1}` {
		t.Errorf("meta stored as %s, want it compacted", res[4].Sent.Message.Meta)
	}

	// The store holds exactly seqs 1..3, and bob's bus saw 1, 2, 3 in order.
	list, err := s.History(ctx, bob, c.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range list {
		bodies = append(bodies, fmt.Sprintf("%d:%s", m.Seq, m.Body))
	}
	if got := strings.Join(bodies, " "); got != "3:three 2:two 1:first" {
		t.Errorf("history %q", got)
	}
	got.mu.Lock()
	var seqs []int64
	var cursors []int64
	for _, e := range got.list {
		if e.Update.Type == chat.UpdateMessage {
			seqs = append(seqs, e.Update.Message.Seq)
			cursors = append(cursors, e.Update.Cursor)
		}
	}
	got.mu.Unlock()
	if fmt.Sprint(seqs) != "[1 2 3]" {
		t.Errorf("bob's bus saw seqs %v, want [1 2 3]", seqs)
	}
	for i := 1; i < len(cursors); i++ {
		if cursors[i] != cursors[i-1]+1 {
			t.Errorf("bob's cursors %v have a gap", cursors)
		}
	}

	// Each send is charged to the sender's rate, as Send charges it (the
	// invalid ones too): the default user burst is 20 and 7 are spent, so
	// of 20 more, 13 pass.
	rs = rs[:0]
	for i := range 20 {
		rs = append(rs, SendRequest{ConversationID: c.ID, ClientID: fmt.Sprintf("r%d", i), Body: "x"})
	}
	res = s.SendBatch(ctx, alice, rs)
	var ok, limited int
	for _, r := range res {
		switch {
		case r.Err == nil:
			ok++
		case chat.ErrorCode(r.Err) == chat.RateLimited:
			limited++
		default:
			t.Errorf("unexpected error %v", r.Err)
		}
	}
	if ok != 13 || limited != 7 {
		t.Errorf("%d sent and %d rate-limited of 20, want 13 and 7", ok, limited)
	}

	// A non-member's batch fails whole and stores nothing.
	const mallory = chat.Address("messenger:mallory")
	if _, err := s.DevLogin(ctx, mallory.App(), mallory.User()); err != nil {
		t.Fatal(err)
	}
	res = s.SendBatch(ctx, mallory, []SendRequest{{ConversationID: c.ID, ClientID: "m1", Body: "x"}, {ConversationID: c.ID, ClientID: "m2", Body: "y"}})
	for i, r := range res {
		if r.Err == nil {
			t.Errorf("a non-member's send %d succeeded", i)
		}
	}
	cv, err := st.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(3 + ok); cv.LastSeq != want {
		t.Errorf("LastSeq %d, want %d", cv.LastSeq, want)
	}
}

// messageJSONSize must cover the JSON of a message whose strings need no
// escapes, at the longest seq and sent_at, or a batch's buffer grows.
func TestMessageJSONSizeCoversPlainMessages(t *testing.T) {
	for _, m := range []chat.Message{
		{ConversationID: "c", Seq: math.MaxInt64, Sender: "messenger:u1", ClientID: "k", Kind: chat.KindText, Body: "",
			SentAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{ConversationID: strings.Repeat("c", 64), Seq: 1, Sender: chat.Address("instagram:" + strings.Repeat("u", 64)), ClientID: strings.Repeat("k", 128),
			Kind: chat.KindText, Body: strings.Repeat("b", 4000), Meta: json.RawMessage(`{"a":[1,2,3]}`),
			SentAt: time.Date(2026, 11, 28, 2, 50, 0, 1, time.UTC)},
	} {
		if got, size := len(wirejson.AppendMessage(nil, &m)), messageJSONSize(&m); got > size {
			t.Errorf("message of %d bytes of JSON, size estimated %d", got, size)
		}
	}
}
