package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// batcher returns the store as a store.BatchAppender. Run adds the batch
// cases only for a backend that implements it, so a store that does not
// (a reopened one, say) fails the case.
func (e *env) batcher() store.BatchAppender {
	e.t.Helper()
	b, ok := e.s.(store.BatchAppender)
	if !ok {
		e.t.Fatalf("%T does not implement store.BatchAppender", e.s)
	}
	return b
}

// batch appends ms in one call and checks it answered one result each.
func (e *env) batch(ms ...chat.Message) []store.Appended {
	e.t.Helper()
	res, err := e.batcher().AppendMessages(e.ctx, ms)
	if err != nil {
		e.t.Fatalf("AppendMessages(%d messages): %v", len(ms), err)
	}
	if len(res) != len(ms) {
		e.t.Fatalf("AppendMessages(%d messages) answered %d results", len(ms), len(res))
	}
	return res
}

// convState is what the store answers about one conversation and the
// users given (streams, and lists with read positions), to show that a
// call changed nothing.
type convState struct {
	conv    any
	history any
	streams map[chat.Address]any
	lists   map[chat.Address]any
}

func (e *env) convState(id string, users ...chat.Address) convState {
	e.t.Helper()
	st := convState{history: normalize(e.messages(id, 0, 1000)), streams: map[chat.Address]any{}, lists: map[chat.Address]any{}}
	c, err := e.s.Conversation(e.ctx, id)
	switch {
	case err == nil:
		st.conv = normalize(c)
	case !errors.Is(err, store.ErrNotFound):
		e.t.Fatalf("Conversation(%s): %v", id, err)
	}
	for _, u := range users {
		st.streams[u] = normalize(e.stream(u))
		st.lists[u] = normalize(e.summaries(u))
	}
	return st
}

func (e *env) wantConvState(what string, got, want convState) {
	e.t.Helper()
	wantEqual(e.t, what+": Conversation", got.conv, want.conv)
	wantEqual(e.t, what+": Messages", got.history, want.history)
	for u, s := range want.streams {
		wantEqual(e.t, fmt.Sprintf("%s: stream of %s", what, u), got.streams[u], s)
		wantEqual(e.t, fmt.Sprintf("%s: conversations of %s", what, u), got.lists[u], want.lists[u])
	}
}

// wantRepeat checks that got answers a repeat of first.
func (e *env) wantRepeat(what string, got, first store.Appended) {
	e.t.Helper()
	if got.Created {
		e.t.Errorf("%s: Created = true for a repeated client id", what)
	}
	if len(got.Deliveries) != 0 {
		e.t.Errorf("%s: Deliveries = %v, want none for a repeat", what, got.Deliveries)
	}
	if got.Cursor != first.Cursor {
		e.t.Errorf("%s: Cursor = %d, want the first answer's %d", what, got.Cursor, first.Cursor)
	}
	wantEqual(e.t, what+": Message", got.Message, first.Message)
}

var batchCases = []testCase{
	{"Seq", func(e *env) {
		a, b, c := addr("alice"), addr("bob"), chat.NewAddress("other", "carol")
		conv := e.newGroup("g1", a, b, c)
		s1 := e.send("g1", a, "c-1", "single one")
		s2 := e.send("g1", b, "c-2", "single two")
		ms := []chat.Message{
			e.msg("g1", a, "b-1", "batch one"),
			e.msg("g1", a, "b-2", "batch two"),
			e.msg("g1", a, "b-3", "batch three"),
		}
		res := e.batch(ms...)
		var want []chat.Message // as stored, oldest first
		want = append(want, s1.Message, s2.Message)
		for i, r := range res {
			w := withSeq(ms[i], int64(3+i))
			want = append(want, w)
			what := fmt.Sprintf("batch message %d", i+1)
			if !r.Created {
				e.t.Errorf("%s: Created = false for a new client id", what)
			}
			wantEqual(e.t, what+" as answered", r.Message, w)
			e.wantDeliveries(what, r.Deliveries, msgUpdate(w), a, b, c)
			if got := deliveryMap(e.t, what, r.Deliveries)[a]; r.Cursor != got {
				e.t.Errorf("%s: Cursor = %d, but the sender's delivery says %d", what, r.Cursor, got)
			}
			// alice's stream: the create, two singles, then the batch.
			if wantCur := int64(4 + i); r.Cursor != wantCur {
				e.t.Errorf("%s: sender's Cursor = %d, want %d", what, r.Cursor, wantCur)
			}
		}
		wantConv := conv
		wantConv.LastSeq = 5
		wantConv.UpdatedAt = ms[2].SentAt
		wantEqual(e.t, "Conversation after the batch", e.conv("g1"), wantConv)
		wantEqual(e.t, "Messages after the batch", e.messages("g1", 0, 10), []chat.Message{want[4], want[3], want[2], want[1], want[0]})
		for _, m := range []chat.Address{a, b, c} {
			s := e.stream(m)
			if len(s) != 6 {
				e.t.Errorf("stream of %s has %d updates, want 6 (create, 2 singles, 3 in the batch)", m, len(s))
				continue
			}
			for i, u := range s[1:] {
				wantUpdateShape(e.t, u)
				w := msgUpdate(want[i])
				w.Cursor = int64(i + 2)
				wantEqual(e.t, fmt.Sprintf("%s's update %d", m, i+2), u, w)
			}
		}
		// The sender has read their own batch, with no read update of its
		// own; the others have not moved.
		for user, pos := range map[chat.Address]int64{a: 5, b: 2, c: 0} {
			if got := e.readSeq(user, "g1"); got != pos {
				e.t.Errorf("%s's read position after alice's batch: %d, want %d", user, got, pos)
			}
		}
		// A single append carries on after the batch.
		if r := e.send("g1", c, "c-3", "after"); r.Message.Seq != 6 || r.Cursor != 7 {
			e.t.Errorf("single append after the batch: seq %d cursor %d, want 6 and 7", r.Message.Seq, r.Cursor)
		}
	}},
	{"Repeats", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.create(e.direct(a, b))
		id := chat.DirectID(a, b)
		first := e.send(id, a, "c-1", "hello")
		e.send(id, b, "c-2", "hi there")

		repeatOld := e.msg(id, a, "c-1", "a different body")
		repeatOld.Kind = "other"
		repeatIn := e.msg(id, a, "n-1", "another body")
		repeatIn.Kind = "other"
		ms := []chat.Message{
			e.msg(id, a, "n-1", "new one"),
			repeatOld, // of the single append before
			e.msg(id, a, "n-2", "new two"),
			repeatIn,                         // of the first in this batch
			e.msg(id, a, "c-2", "new three"), // bob's client id, but alice's own is new
		}
		res := e.batch(ms...)
		stored := []chat.Message{withSeq(ms[0], 3), withSeq(ms[2], 4), withSeq(ms[4], 5)}
		for i, j := range []int{0, 2, 4} {
			what := fmt.Sprintf("batch result %d (new)", j+1)
			if !res[j].Created {
				e.t.Errorf("%s: Created = false", what)
			}
			wantEqual(e.t, what+": Message", res[j].Message, stored[i])
			e.wantDeliveries(what, res[j].Deliveries, msgUpdate(stored[i]), a, b)
			// alice's stream: create, two singles, then the three new ones
			// with no gap where the repeats stood.
			if want := int64(4 + i); res[j].Cursor != want {
				e.t.Errorf("%s: Cursor = %d, want %d", what, res[j].Cursor, want)
			}
		}
		e.wantRepeat("batch result 2 (repeat of an earlier call)", res[1], first)
		e.wantRepeat("batch result 4 (repeat within the batch)", res[3], res[0])

		wantConv := e.conv(id)
		if wantConv.LastSeq != 5 {
			e.t.Errorf("LastSeq after a batch of 3 new and 2 repeats = %d, want 5", wantConv.LastSeq)
		}
		if !wantConv.UpdatedAt.Equal(ms[4].SentAt) {
			e.t.Errorf("UpdatedAt after the batch = %v, want the last new message's %v", wantConv.UpdatedAt, ms[4].SentAt)
		}
		list := e.messages(id, 0, 10)
		if len(list) != 5 {
			e.t.Fatalf("Messages after the batch: %d, want 5", len(list))
		}
		wantEqual(e.t, "the batch's messages", list[:3], []chat.Message{stored[2], stored[1], stored[0]})
		if got := e.readSeq(a, id); got != 5 {
			e.t.Errorf("sender's read position after the batch: %d, want 5", got)
		}
		for _, u := range []chat.Address{a, b} {
			if n := len(e.stream(u)); n != 6 {
				e.t.Errorf("stream of %s has %d updates, want 6 (create, 2 singles, 3 new of the batch)", u, n)
			}
		}

		// The same batch again is all repeats: the same answers, and
		// nothing stored.
		before := e.convState(id, a, b)
		again := e.batch(ms...)
		for i, r := range again {
			e.wantRepeat(fmt.Sprintf("batch sent again, result %d", i+1), r, res[i])
		}
		e.wantConvState("after the batch was sent again", e.convState(id, a, b), before)
		// A single append of a client id the batch stored answers the
		// batch's result.
		single, err := e.s.AppendMessage(e.ctx, e.msg(id, a, "n-2", "once more"))
		if err != nil {
			e.t.Fatalf("AppendMessage repeating a batch's client id: %v", err)
		}
		e.wantRepeat("single repeat of a batch's client id", single, res[2])
		e.wantConvState("after a single repeat of a batch's client id", e.convState(id, a, b), before)
	}},
	{"RepeatLast", func(e *env) {
		// A batch whose last message is a repeat: what the new ones before
		// it did (the sender's read position, UpdatedAt) still stands.
		a, b := addr("alice"), addr("bob")
		conv := e.newGroup("g1", a, b)
		old := e.send("g1", a, "c-1", "single")
		for n, last := range []string{"x-1", "c-1"} { // within the batch, of an earlier call
			ms := []chat.Message{
				e.msg("g1", a, fmt.Sprintf("x-%d", 2*n+1), "new"),
				e.msg("g1", a, fmt.Sprintf("x-%d", 2*n+2), "new too"),
				e.msg("g1", a, last, "repeat"),
			}
			res := e.batch(ms...)
			what := fmt.Sprintf("batch %d ending with a repeat of %s", n+1, last)
			seq := int64(2*n + 3) // of the second, last new message
			if res[0].Message.Seq != seq-1 || res[1].Message.Seq != seq || !res[0].Created || !res[1].Created {
				e.t.Errorf("%s: new messages answered seqs %d, %d, created %v, %v; want %d, %d, created",
					what, res[0].Message.Seq, res[1].Message.Seq, res[0].Created, res[1].Created, seq-1, seq)
			}
			if n == 0 {
				e.wantRepeat(what+": last result", res[2], res[0])
			} else {
				e.wantRepeat(what+": last result", res[2], old)
			}
			wantConv := conv
			wantConv.LastSeq = seq
			wantConv.UpdatedAt = ms[1].SentAt
			wantEqual(e.t, what+": Conversation", e.conv("g1"), wantConv)
			if got := e.readSeq(a, "g1"); got != seq {
				e.t.Errorf("%s: sender's read position %d, want %d", what, got, seq)
			}
		}
	}},
	{"Many", func(e *env) {
		// A batch larger than any pipeline is likely to be.
		members := []chat.Address{addr("u0"), addr("u1"), chat.NewAddress("other", "u2")}
		l := newLedger(e.t)
		c, ds := e.create(e.group("g1", members...))
		l.add("create", ds, convUpdate(c))
		ms := make([]chat.Message, 300)
		for i := range ms {
			ms[i] = e.msg("g1", members[1], fmt.Sprintf("c-%d", i), fmt.Sprintf("body %d", i))
		}
		sent := map[int64]chat.Message{}
		for i, r := range e.batch(ms...) {
			if want := int64(i + 1); r.Message.Seq != want || !r.Created || r.Cursor != want+1 {
				e.t.Errorf("message %d: seq %d cursor %d created %v; want seq %d cursor %d created", i, r.Message.Seq, r.Cursor, r.Created, want, want+1)
			}
			l.add(ms[i].ClientID, r.Deliveries, msgUpdate(r.Message))
			sent[r.Message.Seq] = withSeq(ms[i], r.Message.Seq)
		}
		e.wantAllMessages("g1", sent)
		e.check(l)
		if got := e.readSeq(members[1], "g1"); got != int64(len(ms)) {
			e.t.Errorf("sender's read position after a batch of %d: %d", len(ms), got)
		}
	}},
	{"UnknownConversation", func(e *env) {
		a := addr("alice")
		e.newGroup("g1", a, addr("bob"))
		before := e.convState("gnope", a)
		_, err := e.batcher().AppendMessages(e.ctx, []chat.Message{
			e.msg("gnope", a, "c-1", "hi"), e.msg("gnope", a, "c-2", "there"),
		})
		e.wantErr("AppendMessages to an unknown conversation", err, store.ErrNotFound)
		e.wantConvState("after a batch to an unknown conversation", e.convState("gnope", a), before)
		_, err = e.s.Conversation(e.ctx, "gnope")
		e.wantErr("Conversation after a batch to an unknown conversation", err, store.ErrNotFound)
	}},
	{"NonMember", func(e *env) {
		a, b, x := addr("alice"), addr("bob"), addr("mallory")
		e.newGroup("g1", a, b)
		e.send("g1", a, "c-1", "hi")
		before := e.convState("g1", a, b, x)
		_, err := e.batcher().AppendMessages(e.ctx, []chat.Message{
			e.msg("g1", x, "c-1", "hi"), e.msg("g1", x, "c-2", "there"),
		})
		e.wantErr("AppendMessages from a non-member", err, store.ErrNotFound)
		e.wantConvState("after a refused batch", e.convState("g1", a, b, x), before)

		// One who left is no longer a member either.
		if _, _, err := e.s.UpdateMembers(e.ctx, "g1", e.now(), func(c *chat.Conversation) error {
			c.Members = []chat.Address{a}
			return nil
		}); err != nil {
			e.t.Fatalf("UpdateMembers: %v", err)
		}
		before = e.convState("g1", a, b)
		_, err = e.batcher().AppendMessages(e.ctx, []chat.Message{e.msg("g1", b, "c-9", "still here?")})
		e.wantErr("AppendMessages from a member who left", err, store.ErrNotFound)
		e.wantConvState("after a batch from a member who left", e.convState("g1", a, b), before)
	}},
	{"Empty", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		e.send("g1", a, "c-1", "hi")
		before := e.convState("g1", a, b)
		for _, ms := range [][]chat.Message{nil, {}} {
			res, err := e.batcher().AppendMessages(e.ctx, ms)
			if err != nil {
				e.t.Errorf("AppendMessages(%#v): %v", ms, err)
			}
			if len(res) != 0 {
				e.t.Errorf("AppendMessages(%#v) answered %s", ms, show(res))
			}
		}
		e.wantConvState("after empty batches", e.convState("g1", a, b), before)
		if r := e.send("g1", b, "c-2", "next"); r.Message.Seq != 2 {
			e.t.Errorf("append after empty batches: seq %d, want 2", r.Message.Seq)
		}
	}},
	{"MetaOrNone", func(e *env) {
		// A batch mixing messages with and without meta keeps each as
		// sent: no meta stays none, in the answers and in the history.
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		ms := []chat.Message{e.msg("g1", a, "c-1", "one"), e.msg("g1", a, "c-2", "two"), e.msg("g1", a, "c-3", "three")}
		ms[1].Meta = nil
		want := []chat.Message{withSeq(ms[2], 3), withSeq(ms[1], 2), withSeq(ms[0], 1)}
		res := e.batch(ms...)
		wantEqual(e.t, "answers", []chat.Message{res[2].Message, res[1].Message, res[0].Message}, want)
		wantEqual(e.t, "Messages", e.messages("g1", 0, 10), want)
		if m := e.messages("g1", 0, 10); len(m) == 3 && m[1].Meta != nil {
			e.t.Errorf("a message sent without meta came back with %q", m[1].Meta)
		}
	}},
	{"NoAliasing", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		ms := []chat.Message{e.msg("g1", a, "c-1", "one"), e.msg("g1", a, "c-2", "two")}
		want := []chat.Message{withSeq(ms[1], 2), withSeq(ms[0], 1)}
		for i := range want {
			want[i].Meta = slices.Clone(want[i].Meta)
		}
		res := e.batch(ms...)
		for i := range ms {
			ms[i].Meta[2] = 'X'
		}
		wantEqual(e.t, "answers after the caller changed meta it handed in", []chat.Message{res[1].Message, res[0].Message}, want)
		for i := range res {
			res[i].Message.Meta[2] = 'Y'
		}
		wantEqual(e.t, "Messages after the caller changed meta it handed in and got back", e.messages("g1", 0, 10), want)
		e.wantDeliveries("stream after the caller changed answers", []chat.Delivery{{User: b, Cursor: 3}}, msgUpdate(want[0]), b)
	}},
	{"Concurrent", func(e *env) {
		// Batches of several sizes and single appends race on one
		// conversation, as pipelining and plain clients do.
		members := []chat.Address{addr("u0"), addr("u1"), addr("u2"), chat.NewAddress("other", "u3")}
		l := newLedger(e.t)
		c, ds := e.create(e.group("g1", members...))
		l.add("create", ds, convUpdate(c))
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			sent = map[int64]chat.Message{}
		)
		note := func(m chat.Message, res store.Appended, from chat.Address) {
			if !res.Created {
				e.t.Errorf("%s: Created = false for a new client id", m.ClientID)
			}
			if got := deliveryMap(e.t, m.ClientID, res.Deliveries)[from]; got != res.Cursor {
				e.t.Errorf("%s: Cursor %d, sender's delivery %d", m.ClientID, res.Cursor, got)
			}
			if len(res.Deliveries) != len(members) {
				e.t.Errorf("%s: %d deliveries, want %d", m.ClientID, len(res.Deliveries), len(members))
			}
			l.add(m.ClientID, res.Deliveries, msgUpdate(res.Message))
			mu.Lock()
			defer mu.Unlock()
			if _, dup := sent[res.Message.Seq]; dup {
				e.t.Errorf("seq %d answered twice", res.Message.Seq)
			}
			sent[res.Message.Seq] = withSeq(m, res.Message.Seq)
		}
		start := make(chan struct{})
		for w := range workers {
			// Two workers share each sender; each worker is one client
			// whose messages must keep the order it gave them.
			from := members[w%len(members)]
			msgs := make([]chat.Message, sendsEachWork)
			for i := range msgs {
				msgs[i] = e.msg("g1", from, fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("body %d of %d", i, w))
			}
			batched := w%3 != 2 // two of three workers send batches
			wg.Go(func() {
				<-start
				var last int64
				for i, size := 0, 1; i < len(msgs); size = size%4 + 1 {
					part := msgs[i:min(i+size, len(msgs))]
					i += len(part)
					var res []store.Appended
					if batched {
						var err error
						res, err = e.batcher().AppendMessages(e.ctx, part)
						if err != nil {
							e.t.Errorf("AppendMessages: %v", err)
							return
						}
						if len(res) != len(part) {
							e.t.Errorf("AppendMessages of %d answered %d results", len(part), len(res))
							return
						}
					} else {
						for _, m := range part {
							r, err := e.s.AppendMessage(e.ctx, m)
							if err != nil {
								e.t.Errorf("AppendMessage: %v", err)
								return
							}
							res = append(res, r)
						}
					}
					for j, r := range res {
						if r.Message.Seq <= last {
							e.t.Errorf("worker %d: %s got seq %d after seq %d", w, part[j].ClientID, r.Message.Seq, last)
						}
						if batched && j > 0 && r.Message.Seq != last+1 {
							e.t.Errorf("worker %d: batch of %d got seqs with a gap: %d after %d", w, len(part), r.Message.Seq, last)
						}
						last = r.Message.Seq
						note(part[j], r, from)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if e.t.Failed() {
			return
		}
		e.wantAllMessages("g1", sent)
		e.check(l)
	}},
	{"RacingRepeats", func(e *env) {
		// A client retrying a pipelined batch while the first attempt is
		// in flight, one message of it also sent on its own: each message
		// once, and every attempt answers it.
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		ids := []string{"r-1", "r-2", "r-3"}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			answers = map[string][]store.Appended{}
		)
		record := func(id string, r store.Appended) {
			mu.Lock()
			answers[id] = append(answers[id], r)
			mu.Unlock()
		}
		start := make(chan struct{})
		for w := range workers {
			var ms []chat.Message
			for _, id := range ids {
				ms = append(ms, e.msg("g1", a, id, fmt.Sprintf("attempt %d", w)))
			}
			single := e.msg("g1", a, "r-2", fmt.Sprintf("single attempt %d", w))
			wg.Go(func() {
				<-start
				if w%2 == 1 {
					r, err := e.s.AppendMessage(e.ctx, single)
					if err != nil {
						e.t.Errorf("AppendMessage: %v", err)
						return
					}
					record(single.ClientID, r)
					return
				}
				res, err := e.batcher().AppendMessages(e.ctx, ms)
				if err != nil {
					e.t.Errorf("AppendMessages: %v", err)
					return
				}
				if len(res) != len(ms) {
					e.t.Errorf("AppendMessages of %d answered %d results", len(ms), len(res))
					return
				}
				for i, r := range res {
					record(ms[i].ClientID, r)
				}
			})
		}
		close(start)
		wg.Wait()
		if e.t.Failed() {
			return
		}
		seqs := map[int64]string{}
		for _, id := range ids {
			var first store.Appended
			created := 0
			for _, r := range answers[id] {
				if r.Created {
					created++
					first = r
				}
			}
			if created != 1 {
				e.t.Errorf("%s: %d of %d racing attempts say created, want 1", id, created, len(answers[id]))
				continue
			}
			for _, r := range answers[id] {
				if r.Cursor != first.Cursor || r.Message.Seq != first.Message.Seq {
					e.t.Errorf("%s: an attempt answered seq %d cursor %d, the created one seq %d cursor %d",
						id, r.Message.Seq, r.Cursor, first.Message.Seq, first.Cursor)
				}
			}
			if other, dup := seqs[first.Message.Seq]; dup {
				e.t.Errorf("%s and %s both got seq %d", id, other, first.Message.Seq)
			}
			seqs[first.Message.Seq] = id
		}
		if got := e.conv("g1").LastSeq; got != int64(len(ids)) {
			e.t.Errorf("LastSeq after racing attempts at %d client ids = %d", len(ids), got)
		}
		if n := len(e.messages("g1", 0, 10)); n != len(ids) {
			e.t.Errorf("%d messages stored after racing attempts at %d client ids", n, len(ids))
		}
		for _, m := range []chat.Address{a, b} {
			if n := len(e.stream(m)); n != 1+len(ids) {
				e.t.Errorf("stream of %s has %d updates, want %d", m, n, 1+len(ids))
			}
		}
	}},
}

// batchPersistCases run when the backend implements store.BatchAppender
// and the harness can reopen it.
var batchPersistCases = []testCase{
	{"Persist", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		e.send("g1", b, "c-1", "single")
		ms := []chat.Message{
			e.msg("g1", a, "b-1", "one"), e.msg("g1", a, "b-2", "two"), e.msg("g1", a, "b-3", "three"),
		}
		res := e.batch(ms...)
		before := e.convState("g1", a, b)
		readA := e.readSeq(a, "g1")
		e.reopen()
		e.wantConvState("after reopening", e.convState("g1", a, b), before)
		if got := e.readSeq(a, "g1"); got != readA || got != 4 {
			e.t.Errorf("sender's read position after reopening: %d, want %d (and 4)", got, readA)
		}
		// Its client ids are remembered across the reopen.
		again := e.batch(ms...)
		for i, r := range again {
			e.wantRepeat(fmt.Sprintf("batch result %d sent again after reopening", i+1), r, res[i])
		}
		e.wantConvState("after sending the batch again", e.convState("g1", a, b), before)
		next := e.batch(e.msg("g1", b, "b-1", "after"), e.msg("g1", b, "b-2", "after too"))
		if next[0].Message.Seq != 5 || next[1].Message.Seq != 6 {
			e.t.Errorf("batch after reopening: seqs %d, %d; want 5, 6", next[0].Message.Seq, next[1].Message.Seq)
		}
	}},
}
