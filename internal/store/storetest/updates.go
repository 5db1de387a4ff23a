package storetest

import (
	"fmt"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var updatesCases = []testCase{
	{"Edges", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		for i := range 4 {
			e.send("g1", b, fmt.Sprintf("c-%d", i), "hi")
		}
		all := e.stream(a) // cursors 1..5, checked by stream
		if len(all) != 5 {
			e.t.Fatalf("stream has %d updates, want 5", len(all))
		}
		for _, c := range []struct {
			after    int64
			limit    int
			from, to int64 // cursors expected, inclusive; from > to: none
		}{
			{0, 100, 1, 5},
			{-1, 100, 1, 5},
			{0, 1, 1, 1},
			{0, 5, 1, 5},
			{2, 2, 3, 4},
			{3, 100, 4, 5},
			{4, 1, 5, 5},
			{5, 100, 1, 0},
			{99, 10, 1, 0},
		} {
			got := e.updatesAfter(a, c.after, c.limit)
			var want []chat.Update
			if c.from <= c.to {
				want = all[c.from-1 : c.to]
			}
			wantEqual(e.t, fmt.Sprintf("Updates(after=%d, limit=%d)", c.after, c.limit), got, want)
		}
		if list := e.updatesAfter(addr("nobody"), 0, 10); len(list) != 0 {
			e.t.Errorf("Updates of a user with no stream: %s", show(list))
		}
	}},
	{"PerUser", func(e *env) {
		a, b, c := addr("alice"), addr("bob"), chat.NewAddress("other", "carol")
		e.newGroup("g1", a, b)    // a:1 b:1
		e.send("g1", a, "x", "1") // a:2 b:2
		e.newGroup("g2", a, c)    // a:3 c:1
		e.send("g2", c, "x", "2") // a:4 c:2
		e.send("g1", b, "x", "3") // a:5 b:3
		for user, n := range map[chat.Address]int{a: 5, b: 3, c: 2} {
			if got := len(e.stream(user)); got != n {
				e.t.Errorf("stream of %s has %d updates, want %d", user, got, n)
			}
		}
	}},
	{"Contents", func(e *env) {
		a, b := addr("alice"), addr("bob")
		conv := e.newGroup("g1", a, b)
		created := conv
		m := e.send("g1", a, "c-1", "hi").Message
		if _, _, err := e.s.MarkRead(e.ctx, "g1", b, 1); err != nil {
			e.t.Fatalf("MarkRead: %v", err)
		}
		conv.LastSeq, conv.UpdatedAt = 1, m.SentAt
		now := e.now()
		after, _, err := e.s.UpdateMembers(e.ctx, "g1", now, func(c *chat.Conversation) error {
			c.Members = append(c.Members, addr("carol"))
			return nil
		})
		if err != nil {
			e.t.Fatalf("UpdateMembers: %v", err)
		}
		wantConv := conv
		wantConv.Members = []chat.Address{a, b, addr("carol")}
		wantConv.UpdatedAt = now
		wantEqual(e.t, "UpdateMembers's answer", after, wantConv)
		want := []chat.Update{
			convUpdate(created),
			msgUpdate(m),
			readUpdate("g1", b, 1),
			convUpdate(wantConv),
		}
		for i := range want {
			want[i].Cursor = int64(i + 1)
		}
		for _, user := range []chat.Address{a, b} {
			got := e.stream(user)
			for _, u := range got {
				wantUpdateShape(e.t, u)
			}
			wantEqual(e.t, fmt.Sprintf("stream of %s", user), got, want)
		}
	}},
}

var markReadCases = []testCase{
	{"Forward", func(e *env) {
		a, b, c := addr("alice"), addr("bob"), addr("carol")
		e.newGroup("g1", a, b, c)
		for i := range 3 {
			e.send("g1", a, fmt.Sprintf("c-%d", i), "hi")
		}
		markRead := func(seq int64) (int64, []chat.Delivery) {
			e.t.Helper()
			got, ds, err := e.s.MarkRead(e.ctx, "g1", b, seq)
			if err != nil {
				e.t.Fatalf("MarkRead(%d): %v", seq, err)
			}
			return got, ds
		}
		got, ds := markRead(2)
		if got != 2 {
			e.t.Errorf("MarkRead(2) from 0 = %d, want 2", got)
		}
		e.wantDeliveries("MarkRead(2)", ds, readUpdate("g1", b, 2), a, b, c)
		if got := e.readSeq(b, "g1"); got != 2 {
			e.t.Errorf("read position after MarkRead(2): %d", got)
		}
		lens := map[chat.Address]int{}
		for _, m := range []chat.Address{a, b, c} {
			lens[m] = len(e.stream(m))
		}
		for _, seq := range []int64{1, 2} {
			got, ds := markRead(seq)
			if got != 2 {
				e.t.Errorf("MarkRead(%d) at 2 = %d, want 2: it never moves back", seq, got)
			}
			if len(ds) != 0 {
				e.t.Errorf("MarkRead(%d) at 2 delivered %v; want none", seq, ds)
			}
		}
		for _, m := range []chat.Address{a, b, c} {
			if n := len(e.stream(m)); n != lens[m] {
				e.t.Errorf("stream of %s grew from %d to %d on MarkRead calls that did not move", m, lens[m], n)
			}
		}
		if got := e.readSeq(b, "g1"); got != 2 {
			e.t.Errorf("read position after moving back: %d, want 2", got)
		}
		got, ds = markRead(3)
		if got != 3 {
			e.t.Errorf("MarkRead(3) from 2 = %d, want 3", got)
		}
		e.wantDeliveries("MarkRead(3)", ds, readUpdate("g1", b, 3), a, b, c)
		if got := e.readSeq(c, "g1"); got != 0 {
			e.t.Errorf("carol's read position after bob read: %d, want 0", got)
		}
	}},
	{"Sender", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		e.send("g1", a, "c-1", "one")
		e.send("g1", a, "c-2", "two")
		got, ds, err := e.s.MarkRead(e.ctx, "g1", a, 1)
		if err != nil {
			e.t.Fatalf("MarkRead: %v", err)
		}
		if got != 2 || len(ds) != 0 {
			e.t.Errorf("sender's MarkRead(1) after sending seq 2 = %d, %v; want 2 and no deliveries", got, ds)
		}
	}},
	{"NotFound", func(e *env) {
		a, b := addr("alice"), addr("bob")
		_, _, err := e.s.MarkRead(e.ctx, "gnope", a, 1)
		e.wantErr("MarkRead in an unknown conversation", err, store.ErrNotFound)
		e.newGroup("g1", a, b)
		e.send("g1", a, "c-1", "one")
		_, _, err = e.s.MarkRead(e.ctx, "g1", addr("mallory"), 1)
		e.wantErr("MarkRead by a non-member", err, store.ErrNotFound)
		if s := e.stream(addr("mallory")); len(s) != 0 {
			e.t.Errorf("stream of the non-member: %s", show(s))
		}
		if n := len(e.stream(b)); n != 2 {
			e.t.Errorf("bob's stream has %d updates after a refused MarkRead, want 2", n)
		}
	}},
}
