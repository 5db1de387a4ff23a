package storetest

import (
	"fmt"
	"sync"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// world is a small but complete state: apps, a direct and a group
// conversation with messages, reads, a member change, and blocks.
type world struct {
	users []chat.Address
	convs []string
	// sends are the first answers, to compare repeats with after reopening.
	sends []store.Appended
	msgs  []chat.Message // as handed in, for repeats
}

func (e *env) populate() *world {
	e.t.Helper()
	a, b, c, d := addr("alice"), addr("bob"), chat.NewAddress("other", "carol"), addr("dave")
	w := &world{users: []chat.Address{a, b, c, d}}
	e.createApp("app", "other")
	e.createApp("other", "app")
	if _, err := e.s.UpdateApp(e.ctx, "other", func(x *chat.App) error { x.Name = "Renamed"; return nil }); err != nil {
		e.t.Fatalf("UpdateApp: %v", err)
	}
	direct := e.direct(a, c)
	e.create(direct)
	e.newGroup("g1", a, b, c)
	w.convs = []string{direct.ID, "g1"}
	send := func(conv string, from chat.Address, clientID string) {
		m := e.msg(conv, from, clientID, "body of "+clientID)
		res, err := e.s.AppendMessage(e.ctx, m)
		if err != nil {
			e.t.Fatalf("AppendMessage: %v", err)
		}
		w.sends = append(w.sends, res)
		w.msgs = append(w.msgs, m)
	}
	send(direct.ID, a, "d-1")
	send("g1", b, "g-1")
	send(direct.ID, c, "d-2")
	send("g1", a, "g-2")
	if _, _, err := e.s.MarkRead(e.ctx, "g1", c, 2); err != nil {
		e.t.Fatalf("MarkRead: %v", err)
	}
	if _, _, err := e.s.UpdateMembers(e.ctx, "g1", e.now(), func(x *chat.Conversation) error {
		x.Members = []chat.Address{a, c, d} // bob leaves, dave joins
		return nil
	}); err != nil {
		e.t.Fatalf("UpdateMembers: %v", err)
	}
	send("g1", d, "g-3")
	for _, p := range [][2]chat.Address{{a, b}, {c, a}} {
		if err := e.s.Block(e.ctx, p[0], p[1]); err != nil {
			e.t.Fatalf("Block: %v", err)
		}
	}
	return w
}

// snapshot is everything the store answers about w, normalised.
type snapshot struct {
	apps    any
	convs   map[string]any
	history map[string]any
	streams map[chat.Address]any
	lists   map[chat.Address]any
	blocks  map[[2]chat.Address]bool
}

func (e *env) snapshot(w *world) snapshot {
	e.t.Helper()
	apps, err := e.s.Apps(e.ctx)
	if err != nil {
		e.t.Fatalf("Apps: %v", err)
	}
	s := snapshot{
		apps:    normalize(apps),
		convs:   map[string]any{},
		history: map[string]any{},
		streams: map[chat.Address]any{},
		lists:   map[chat.Address]any{},
		blocks:  map[[2]chat.Address]bool{},
	}
	for _, id := range w.convs {
		s.convs[id] = normalize(e.conv(id))
		s.history[id] = normalize(e.messages(id, 0, 1000))
	}
	for _, u := range w.users {
		s.streams[u] = normalize(e.stream(u))
		s.lists[u] = normalize(e.summaries(u))
		for _, v := range w.users {
			ok, err := e.s.Blocked(e.ctx, u, v)
			if err != nil {
				e.t.Fatalf("Blocked: %v", err)
			}
			s.blocks[[2]chat.Address{u, v}] = ok
		}
	}
	return s
}

func (e *env) wantSnapshot(what string, got, want snapshot) {
	e.t.Helper()
	wantEqual(e.t, what+": Apps", got.apps, want.apps)
	for id := range want.convs {
		wantEqual(e.t, what+": Conversation "+id, got.convs[id], want.convs[id])
		wantEqual(e.t, what+": Messages of "+id, got.history[id], want.history[id])
	}
	for u := range want.streams {
		wantEqual(e.t, fmt.Sprintf("%s: stream of %s", what, u), got.streams[u], want.streams[u])
		wantEqual(e.t, fmt.Sprintf("%s: conversations of %s", what, u), got.lists[u], want.lists[u])
	}
	for k, v := range want.blocks {
		if got.blocks[k] != v {
			e.t.Errorf("%s: Blocked(%s, %s) = %v, want %v", what, k[0], k[1], got.blocks[k], v)
		}
	}
}

var persistCases = []testCase{
	{"Everything", func(e *env) {
		w := e.populate()
		before := e.snapshot(w)
		e.reopen()
		e.wantSnapshot("after reopening", e.snapshot(w), before)
		e.reopen()
		e.wantSnapshot("after reopening twice", e.snapshot(w), before)
	}},
	{"Empty", func(e *env) {
		e.reopen()
		a, b := addr("alice"), addr("bob")
		_, ds := e.create(e.group("g1", a, b))
		for _, d := range ds {
			if d.Cursor != 1 {
				e.t.Errorf("first cursor of %s in a reopened empty store: %d, want 1", d.User, d.Cursor)
			}
		}
		if res := e.send("g1", a, "c-1", "hi"); res.Message.Seq != 1 {
			e.t.Errorf("first seq in a reopened empty store: %d, want 1", res.Message.Seq)
		}
	}},
	{"Continue", func(e *env) {
		w := e.populate()
		a, c, d := w.users[0], w.users[2], w.users[3]
		lens := map[chat.Address]int64{}
		for _, u := range w.users {
			lens[u] = int64(len(e.stream(u)))
		}
		g1 := e.conv("g1")
		e.reopen()

		// Repeats of sends from before are still recognised. (bob left g1:
		// what a repeat from a former member answers is not specified.)
		for i, m := range w.msgs {
			if m.Sender == w.users[1] {
				continue
			}
			m.Body = "repeated after reopening"
			m.SentAt = e.now()
			res, err := e.s.AppendMessage(e.ctx, m)
			if err != nil {
				e.t.Fatalf("repeat of %s: %v", m.ClientID, err)
			}
			if res.Created || len(res.Deliveries) != 0 || res.Cursor != w.sends[i].Cursor {
				e.t.Errorf("repeat of %s after reopening: Created %v, Cursor %d, Deliveries %v; want false, %d, none", m.ClientID, res.Created, res.Cursor, res.Deliveries, w.sends[i].Cursor)
			}
			wantEqual(e.t, "repeat of "+m.ClientID+" after reopening", res.Message, w.sends[i].Message)
		}
		// Existing ids are still taken.
		e.wantErr("CreateApp of a taken id after reopening", e.s.CreateApp(e.ctx, chat.App{ID: "app", CreatedAt: e.now()}), store.ErrConflict)
		direct := e.direct(a, c)
		if _, ds, created, err := e.s.CreateConversation(e.ctx, direct); err != nil || created || len(ds) != 0 {
			e.t.Errorf("CreateConversation of an existing id after reopening: created %v, deliveries %v, err %v", created, ds, err)
		}

		// Seqs and cursors continue where they stopped.
		res := e.send("g1", a, "after-1", "after reopening")
		if want := g1.LastSeq + 1; res.Message.Seq != want {
			e.t.Errorf("first seq after reopening = %d, want %d", res.Message.Seq, want)
		}
		e.wantDeliveries("the first send after reopening", res.Deliveries, msgUpdate(res.Message), g1.Members...)
		got := deliveryMap(e.t, "send", res.Deliveries)
		for _, m := range g1.Members {
			if want := lens[m] + 1; got[m] != want {
				e.t.Errorf("first cursor of %s after reopening = %d, want %d", m, got[m], want)
			}
		}
		// Read positions held: carol read 2 before; reading 1 moves nothing.
		if pos, ds, err := e.s.MarkRead(e.ctx, "g1", c, 1); err != nil || pos != 2 || len(ds) != 0 {
			e.t.Errorf("MarkRead(1) at 2 after reopening = %d, %v, %v; want 2, no deliveries", pos, ds, err)
		}
		pos, ds, err := e.s.MarkRead(e.ctx, "g1", d, res.Message.Seq)
		if err != nil || pos != res.Message.Seq {
			e.t.Fatalf("MarkRead after reopening = %d, %v", pos, err)
		}
		e.wantDeliveries("MarkRead after reopening", ds, readUpdate("g1", d, pos), g1.Members...)
		if got := e.readSeq(a, "g1"); got != res.Message.Seq {
			e.t.Errorf("sender's read position after reopening and sending: %d", got)
		}
		for _, u := range w.users {
			e.stream(u) // cursors 1..n with no gap
		}
		e.reopen()
		if got := e.send("g1", c, "after-2", "again").Message.Seq; got != res.Message.Seq+1 {
			e.t.Errorf("seq after reopening twice = %d, want %d", got, res.Message.Seq+1)
		}
	}},
	{"AfterConcurrentSends", func(e *env) {
		members := []chat.Address{addr("u0"), addr("u1"), addr("u2")}
		l := newLedger(e.t)
		c, ds := e.create(e.group("g1", members...))
		l.add("create", ds, convUpdate(c))
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			sent = map[int64]chat.Message{}
		)
		for w := range workers {
			from := members[w%len(members)]
			msgs := make([]chat.Message, sendsEachWork/3)
			for i := range msgs {
				msgs[i] = e.msg("g1", from, fmt.Sprintf("w%d-%d", w, i), "hi")
			}
			wg.Go(func() {
				for _, m := range msgs {
					res, err := e.s.AppendMessage(e.ctx, m)
					if err != nil {
						e.t.Errorf("AppendMessage: %v", err)
						return
					}
					l.add("AppendMessage", res.Deliveries, msgUpdate(res.Message))
					mu.Lock()
					sent[res.Message.Seq] = withSeq(m, res.Message.Seq)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if e.t.Failed() {
			return
		}
		e.reopen()
		e.wantAllMessages("g1", sent)
		e.check(l)
	}},
}
