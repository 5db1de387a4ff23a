package storetest

import (
	"fmt"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var appendCases = []testCase{
	{"Seq", func(e *env) {
		a, b, c := addr("alice"), addr("bob"), chat.NewAddress("other", "carol")
		conv := e.newGroup("g1", a, b, c)
		var sent []chat.Message
		for i, from := range []chat.Address{a, b, a} {
			m := e.msg("g1", from, fmt.Sprintf("c-%d", i), fmt.Sprintf("body %d", i))
			res, err := e.s.AppendMessage(e.ctx, m)
			if err != nil {
				e.t.Fatalf("AppendMessage: %v", err)
			}
			want := withSeq(m, int64(i+1))
			sent = append(sent, want)
			if !res.Created {
				e.t.Errorf("message %d: Created = false", i+1)
			}
			wantEqual(e.t, fmt.Sprintf("message %d as answered", i+1), res.Message, want)
			e.wantDeliveries(fmt.Sprintf("message %d", i+1), res.Deliveries, msgUpdate(want), a, b, c)
			if got := deliveryMap(e.t, "AppendMessage", res.Deliveries)[from]; res.Cursor != got {
				e.t.Errorf("message %d: Cursor = %d, but the sender's delivery says %d", i+1, res.Cursor, got)
			}
			// Each member's stream: the create, then one update per message.
			if want := int64(i + 2); res.Cursor != want {
				e.t.Errorf("message %d: sender's Cursor = %d, want %d", i+1, res.Cursor, want)
			}
			after := e.conv("g1")
			wantConv := conv
			wantConv.LastSeq = int64(i + 1)
			wantConv.UpdatedAt = m.SentAt
			wantEqual(e.t, fmt.Sprintf("Conversation after message %d", i+1), after, wantConv)
		}
		wantEqual(e.t, "Messages", e.messages("g1", 0, 10), []chat.Message{sent[2], sent[1], sent[0]})
		for _, m := range []chat.Address{a, b, c} {
			s := e.stream(m)
			if len(s) != 4 {
				e.t.Errorf("stream of %s has %d updates, want 4", m, len(s))
				continue
			}
			for i, u := range s[1:] {
				wantUpdateShape(e.t, u)
				want := msgUpdate(sent[i])
				want.Cursor = int64(i + 2)
				wantEqual(e.t, fmt.Sprintf("%s's update %d", m, i+2), u, want)
			}
		}
	}},
	{"UnknownConversation", func(e *env) {
		_, err := e.s.AppendMessage(e.ctx, e.msg("gnope", addr("alice"), "c-1", "hi"))
		e.wantErr("AppendMessage to an unknown conversation", err, store.ErrNotFound)
		if s := e.stream(addr("alice")); len(s) != 0 {
			e.t.Errorf("stream after a failed append: %s", show(s))
		}
	}},
	{"NonMember", func(e *env) {
		a, b, x := addr("alice"), addr("bob"), addr("mallory")
		conv := e.newGroup("g1", a, b)
		_, err := e.s.AppendMessage(e.ctx, e.msg("g1", x, "c-1", "hi"))
		e.wantErr("AppendMessage from a non-member", err, store.ErrNotFound)
		wantEqual(e.t, "Conversation after a refused append", e.conv("g1"), conv)
		if list := e.messages("g1", 0, 10); len(list) != 0 {
			e.t.Errorf("Messages after a refused append: %s", show(list))
		}
		for _, m := range []chat.Address{a, b} {
			if n := len(e.stream(m)); n != 1 {
				e.t.Errorf("stream of %s has %d updates after a refused append, want 1", m, n)
			}
		}
		if s := e.stream(x); len(s) != 0 {
			e.t.Errorf("stream of the non-member: %s", show(s))
		}
	}},
	{"Idempotent", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.create(e.direct(a, b))
		id := chat.DirectID(a, b)
		first := e.send(id, a, "c-1", "hello")
		e.send(id, b, "c-2", "hi there")
		before := e.conv(id)
		streamA, streamB := e.stream(a), e.stream(b)

		repeat := e.msg(id, a, "c-1", "a different body")
		repeat.Kind = "other"
		got, err := e.s.AppendMessage(e.ctx, repeat)
		if err != nil {
			e.t.Fatalf("AppendMessage repeating a client id: %v", err)
		}
		if got.Created {
			e.t.Error("repeat: Created = true")
		}
		if len(got.Deliveries) != 0 {
			e.t.Errorf("repeat: Deliveries = %v, want none", got.Deliveries)
		}
		if got.Cursor != first.Cursor {
			e.t.Errorf("repeat: Cursor = %d, want the first answer's %d", got.Cursor, first.Cursor)
		}
		wantEqual(e.t, "repeat: Message", got.Message, first.Message)
		wantEqual(e.t, "Conversation after the repeat", e.conv(id), before)
		wantEqual(e.t, "alice's stream after the repeat", e.stream(a), streamA)
		wantEqual(e.t, "bob's stream after the repeat", e.stream(b), streamB)
		if n := len(e.messages(id, 0, 10)); n != 2 {
			e.t.Errorf("Messages after the repeat: %d, want 2", n)
		}
	}},
	{"ClientIDScope", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		e.newGroup("g2", a, b)
		// The key is (conversation, sender, client id): each of these is new.
		r1 := e.send("g1", a, "same", "from alice")
		r2 := e.send("g1", b, "same", "from bob")
		r3 := e.send("g2", a, "same", "elsewhere")
		if r1.Message.Seq != 1 || r2.Message.Seq != 2 || r3.Message.Seq != 1 {
			e.t.Errorf("seqs = %d, %d, %d; want 1, 2, 1", r1.Message.Seq, r2.Message.Seq, r3.Message.Seq)
		}
		wantEqual(e.t, "Messages of g1", e.messages("g1", 0, 10), []chat.Message{r2.Message, r1.Message})
		wantEqual(e.t, "Messages of g2", e.messages("g2", 0, 10), []chat.Message{r3.Message})
	}},
	{"ReadPosition", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		e.send("g1", a, "c-1", "one")
		if got := e.readSeq(a, "g1"); got != 1 {
			e.t.Errorf("sender's read position after sending seq 1: %d", got)
		}
		if got := e.readSeq(b, "g1"); got != 0 {
			e.t.Errorf("other member's read position after seq 1: %d, want 0", got)
		}
		e.send("g1", b, "c-1", "two")
		if got := e.readSeq(b, "g1"); got != 2 {
			e.t.Errorf("sender's read position after sending seq 2: %d", got)
		}
		if got := e.readSeq(a, "g1"); got != 1 {
			e.t.Errorf("alice's read position after bob sent seq 2: %d, want 1", got)
		}
		// Moving the sender's position is part of the append: no read
		// update of its own.
		for _, m := range []chat.Address{a, b} {
			for _, u := range e.stream(m) {
				if u.Type == chat.UpdateRead {
					e.t.Errorf("stream of %s holds a read update after sends only: %s", m, show(u))
				}
			}
		}
	}},
	{"NoAliasing", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		m := e.msg("g1", a, "c-1", "hi")
		want := withSeq(m, 1)
		want.Meta = append([]byte(nil), m.Meta...)
		res, err := e.s.AppendMessage(e.ctx, m)
		if err != nil {
			e.t.Fatalf("AppendMessage: %v", err)
		}
		m.Meta[2] = 'X'
		res.Message.Meta[2] = 'Y'
		list := e.messages("g1", 0, 1)
		if len(list) == 1 && len(list[0].Meta) > 2 {
			list[0].Meta[2] = 'Z'
		}
		if s := e.stream(b); len(s) == 2 && s[1].Message != nil && len(s[1].Message.Meta) > 2 {
			s[1].Message.Meta[2] = 'W'
		}
		wantEqual(e.t, "Messages after the caller changed meta it handed in and got back", e.messages("g1", 0, 1), []chat.Message{want})
		e.wantDeliveries("stream after the caller changed answers", []chat.Delivery{{User: b, Cursor: 2}}, msgUpdate(want), b)
	}},
}

var messagesCases = []testCase{
	{"Paging", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		const n = 7
		var all []chat.Message // newest first
		for i := range n {
			res := e.send("g1", []chat.Address{a, b}[i%2], fmt.Sprintf("c-%d", i), fmt.Sprintf("m%d", i+1))
			all = append([]chat.Message{res.Message}, all...)
		}
		seqs := func(from, to int64) []chat.Message { // newest first, from >= to
			if from < to {
				return nil
			}
			return all[n-from : n-to+1]
		}
		for _, c := range []struct {
			before int64
			limit  int
			want   []chat.Message
		}{
			{0, 100, seqs(7, 1)},
			{-3, 100, seqs(7, 1)},
			{0, 1, seqs(7, 7)},
			{0, 7, seqs(7, 1)},
			{0, 3, seqs(7, 5)},
			{1, 100, nil},
			{2, 100, seqs(1, 1)},
			{5, 3, seqs(4, 2)},
			{2, 3, seqs(1, 1)},
			{7, 100, seqs(6, 1)},
			{8, 100, seqs(7, 1)},
			{1000, 2, seqs(7, 6)},
		} {
			wantEqual(e.t, fmt.Sprintf("Messages(before=%d, limit=%d)", c.before, c.limit), e.messages("g1", c.before, c.limit), c.want)
		}
		// Walking pages by the last seq of each finds everything once.
		for _, limit := range []int{1, 2, 3, 7} {
			var got []chat.Message
			before := int64(0)
			for range n + 2 {
				page := e.messages("g1", before, limit)
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				before = page[len(page)-1].Seq
			}
			wantEqual(e.t, fmt.Sprintf("Messages walked with limit %d", limit), got, all)
		}
	}},
	{"UnknownConversation", func(e *env) {
		if list := e.messages("gnope", 0, 10); len(list) != 0 {
			e.t.Errorf("Messages of an unknown conversation: %s", show(list))
		}
		e.newGroup("g1", addr("alice"), addr("bob"))
		if list := e.messages("g1", 0, 10); len(list) != 0 {
			e.t.Errorf("Messages of a conversation without messages: %s", show(list))
		}
	}},
	{"PerConversation", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		e.newGroup("g2", a, b)
		m1 := e.send("g1", a, "c-1", "in g1").Message
		m2 := e.send("g2", a, "c-1", "in g2").Message
		m3 := e.send("g1", b, "c-2", "in g1 again").Message
		wantEqual(e.t, "Messages of g1", e.messages("g1", 0, 10), []chat.Message{m3, m1})
		wantEqual(e.t, "Messages of g2", e.messages("g2", 0, 10), []chat.Message{m2})
	}},
}
