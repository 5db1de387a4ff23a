package storetest

import (
	"errors"
	"slices"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var memberCases = []testCase{
	{"Change", func(e *env) {
		a, b, c, d := addr("alice"), addr("bob"), addr("carol"), chat.NewAddress("other", "dave")
		e.newGroup("g1", a, b, c)
		e.send("g1", a, "c-1", "before")
		if _, _, err := e.s.MarkRead(e.ctx, "g1", c, 1); err != nil {
			e.t.Fatalf("MarkRead: %v", err)
		}
		current := e.conv("g1")
		now := e.now()
		got, ds, err := e.s.UpdateMembers(e.ctx, "g1", now, func(x *chat.Conversation) error {
			wantEqual(e.t, "UpdateMembers: fn's argument", *x, current)
			x.Members = []chat.Address{a, b, d}
			return nil
		})
		if err != nil {
			e.t.Fatalf("UpdateMembers: %v", err)
		}
		want := current
		want.Members = []chat.Address{a, b, d}
		want.UpdatedAt = now
		wantEqual(e.t, "UpdateMembers's answer", got, want)
		wantEqual(e.t, "Conversation after UpdateMembers", e.conv("g1"), want)
		// Everyone before and after hears of it, the one who left included.
		e.wantDeliveries("UpdateMembers", ds, convUpdate(want), a, b, c, d)

		if got.HasMember(c) {
			e.t.Error("the removed member is still a member")
		}
		if _, ok := e.summary(c, "g1"); ok {
			e.t.Error("the removed member still lists the conversation")
		}
		_, err = e.s.AppendMessage(e.ctx, e.msg("g1", c, "c-2", "still here?"))
		e.wantErr("AppendMessage by the removed member", err, store.ErrNotFound)
		_, _, err = e.s.MarkRead(e.ctx, "g1", c, 1)
		e.wantErr("MarkRead by the removed member", err, store.ErrNotFound)

		if got := e.readSeq(d, "g1"); got != 0 {
			e.t.Errorf("the new member's read position = %d, want 0", got)
		}
		if got := e.readSeq(a, "g1"); got != 1 {
			e.t.Errorf("a staying member's read position = %d, want 1 (kept)", got)
		}
		lenC := len(e.stream(c))
		res := e.send("g1", d, "c-1", "after")
		e.wantDeliveries("a message after the change", res.Deliveries, msgUpdate(res.Message), a, b, d)
		if n := len(e.stream(c)); n != lenC {
			e.t.Errorf("the removed member's stream grew from %d to %d after a later message", lenC, n)
		}
		// History stays readable for the conversation as a whole.
		if n := len(e.messages("g1", 0, 10)); n != 2 {
			e.t.Errorf("Messages after the change: %d, want 2", n)
		}
	}},
	{"FnError", func(e *env) {
		a, b, c := addr("alice"), addr("bob"), addr("carol")
		e.newGroup("g1", a, b, c)
		before := e.conv("g1")
		_, ds, err := e.s.UpdateMembers(e.ctx, "g1", e.now(), func(x *chat.Conversation) error {
			// Changing the argument in place must not leak into the store
			// when fn then fails.
			x.Members[0] = addr("mallory")
			x.Members = append(x.Members, addr("dave"))
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			e.t.Errorf("UpdateMembers with a failing fn: err = %v, want fn's error", err)
		}
		if len(ds) != 0 {
			e.t.Errorf("UpdateMembers with a failing fn delivered %v", ds)
		}
		wantEqual(e.t, "Conversation after a failed UpdateMembers", e.conv("g1"), before)
		for _, m := range []chat.Address{a, b, c, addr("mallory"), addr("dave")} {
			want := 1
			if m == addr("mallory") || m == addr("dave") {
				want = 0
			}
			if n := len(e.stream(m)); n != want {
				e.t.Errorf("stream of %s has %d updates after a failed UpdateMembers, want %d", m, n, want)
			}
		}
	}},
	{"NoChange", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		before := e.conv("g1")
		for _, fn := range []func(*chat.Conversation) error{
			func(*chat.Conversation) error { return nil },
			func(x *chat.Conversation) error { x.Members = slices.Clone(x.Members); return nil },
		} {
			got, ds, err := e.s.UpdateMembers(e.ctx, "g1", e.now(), fn)
			if err != nil {
				e.t.Fatalf("UpdateMembers leaving members as they were: %v", err)
			}
			if len(ds) != 0 {
				e.t.Errorf("UpdateMembers leaving members as they were delivered %v", ds)
			}
			wantEqual(e.t, "UpdateMembers's answer when nothing changed", got, before)
		}
		wantEqual(e.t, "Conversation after UpdateMembers that changed nothing", e.conv("g1"), before)
		for _, m := range []chat.Address{a, b} {
			if n := len(e.stream(m)); n != 1 {
				e.t.Errorf("stream of %s has %d updates, want 1", m, n)
			}
		}
	}},
	{"NotFound", func(e *env) {
		called := false
		_, _, err := e.s.UpdateMembers(e.ctx, "gnope", e.now(), func(*chat.Conversation) error { called = true; return nil })
		e.wantErr("UpdateMembers of an unknown conversation", err, store.ErrNotFound)
		if called {
			e.t.Error("UpdateMembers of an unknown conversation called fn")
		}
	}},
}
