package storetest

import (
	"slices"
	"sync"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var conversationCases = []testCase{
	{"CreateGroup", func(e *env) {
		a, b, c := addr("alice"), addr("bob"), chat.NewAddress("other", "carol")
		in := e.group("g1", a, b, c)
		got, ds := e.create(in)
		wantEqual(e.t, "CreateConversation's answer", got, in)
		stored := e.conv("g1")
		wantEqual(e.t, "Conversation", stored, in)
		e.wantDeliveries("CreateConversation", ds, convUpdate(in), a, b, c)
		for _, m := range in.Members {
			s := e.stream(m)
			if len(s) != 1 || s[0].Cursor != 1 {
				e.t.Errorf("stream of %s after one create: %s, want one update at cursor 1", m, show(s))
				continue
			}
			wantUpdateShape(e.t, s[0])
		}
	}},
	{"CreateDirect", func(e *env) {
		a, b := addr("alice"), chat.NewAddress("other", "bob")
		in := e.direct(a, b)
		got, ds := e.create(in)
		wantEqual(e.t, "CreateConversation's answer", got, in)
		wantEqual(e.t, "Conversation", e.conv(in.ID), in)
		e.wantDeliveries("CreateConversation", ds, convUpdate(in), a, b)
	}},
	{"CreateExisting", func(e *env) {
		a, b := addr("alice"), addr("bob")
		first := e.direct(a, b)
		e.create(first)
		res := e.send(first.ID, a, "c-1", "hello")
		want := first
		want.LastSeq = 1
		want.UpdatedAt = res.Message.SentAt

		again := e.direct(b, a) // the other side asks, later, in the other order
		again.Title = "ignored"
		got, ds, created, err := e.s.CreateConversation(e.ctx, again)
		if err != nil {
			e.t.Fatalf("CreateConversation of an existing id: %v", err)
		}
		if created {
			e.t.Error("CreateConversation of an existing id: created = true")
		}
		if len(ds) != 0 {
			e.t.Errorf("CreateConversation of an existing id: deliveries %v, want none", ds)
		}
		wantEqual(e.t, "CreateConversation of an existing id answers the stored one", got, want)
		wantEqual(e.t, "Conversation after the repeated create", e.conv(first.ID), want)
		for _, m := range []chat.Address{a, b} {
			if n := len(e.stream(m)); n != 2 {
				e.t.Errorf("stream of %s has %d updates, want 2 (create, message): the repeat appended", m, n)
			}
		}
	}},
	{"CreateRace", func(e *env) {
		a, b := addr("alice"), addr("bob")
		const racers = 12
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			mu      sync.Mutex
			created int
			answers []chat.Conversation
			ds      []chat.Delivery
		)
		for i := range racers {
			c := e.direct(a, b)
			if i%2 == 1 {
				c.Members = []chat.Address{b, a}
			}
			wg.Go(func() {
				<-start
				got, d, ok, err := e.s.CreateConversation(e.ctx, c)
				if err != nil {
					e.t.Errorf("CreateConversation: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				answers = append(answers, got)
				if ok {
					created++
					ds = d
				} else if len(d) != 0 {
					e.t.Errorf("CreateConversation with created = false delivered %v", d)
				}
			})
		}
		close(start)
		wg.Wait()
		if created != 1 {
			e.t.Fatalf("%d racing creates of one id: %d say created, want exactly 1", racers, created)
		}
		stored := e.conv(chat.DirectID(a, b))
		for _, got := range answers {
			wantEqual(e.t, "a racing create's answer", got, stored)
		}
		e.wantDeliveries("the winning create", ds, convUpdate(stored), a, b)
		for _, m := range []chat.Address{a, b} {
			if n := len(e.stream(m)); n != 1 {
				e.t.Errorf("stream of %s has %d updates after racing creates, want 1", m, n)
			}
		}
	}},
	{"NotFound", func(e *env) {
		_, err := e.s.Conversation(e.ctx, "gnope")
		e.wantErr("Conversation of an unknown id", err, store.ErrNotFound)
		e.newGroup("g1", addr("alice"), addr("bob"))
		_, err = e.s.Conversation(e.ctx, "g2")
		e.wantErr("Conversation of an unknown id next to a known one", err, store.ErrNotFound)
	}},
	{"NoAliasing", func(e *env) {
		a, b, c := addr("alice"), addr("bob"), addr("carol")
		in := e.group("g1", a, b, c)
		want := in
		want.Members = slices.Clone(in.Members)
		got, _ := e.create(in)
		in.Members[0] = addr("mallory")
		got.Members[1] = addr("mallory")
		wantEqual(e.t, "Conversation after the caller changed its input and the answer", e.conv("g1"), want)
		cv := e.conv("g1")
		cv.Members[2] = addr("mallory")
		s := e.stream(a)
		if len(s) == 1 && s[0].Conversation != nil && len(s[0].Conversation.Members) > 0 {
			s[0].Conversation.Members[0] = addr("mallory")
		}
		wantEqual(e.t, "Conversation after the caller changed answers", e.conv("g1"), want)
		e.wantDeliveries("stream after the caller changed answers", []chat.Delivery{{User: a, Cursor: 1}}, convUpdate(want), a)
	}},
}
