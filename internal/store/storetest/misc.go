package storetest

import (
	"errors"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var blockCases = []testCase{
	{"BlockUnblock", func(e *env) {
		a, b := addr("alice"), chat.NewAddress("other", "bob")
		blocked := func(x, y chat.Address) bool {
			e.t.Helper()
			ok, err := e.s.Blocked(e.ctx, x, y)
			if err != nil {
				e.t.Fatalf("Blocked(%s, %s): %v", x, y, err)
			}
			return ok
		}
		if blocked(a, b) || blocked(b, a) {
			e.t.Error("Blocked is true on an empty store")
		}
		for range 2 {
			if err := e.s.Block(e.ctx, a, b); err != nil {
				e.t.Fatalf("Block (idempotent): %v", err)
			}
		}
		if !blocked(a, b) {
			e.t.Error("Blocked(a, b) = false after Block(a, b)")
		}
		if blocked(b, a) {
			e.t.Error("Blocked(b, a) = true after Block(a, b): direction matters")
		}
		if blocked(a, addr("carol")) {
			e.t.Error("Blocked(a, carol) = true after Block(a, b)")
		}
		for range 2 {
			if err := e.s.Unblock(e.ctx, a, b); err != nil {
				e.t.Fatalf("Unblock (idempotent): %v", err)
			}
		}
		if blocked(a, b) {
			e.t.Error("Blocked(a, b) = true after Unblock(a, b)")
		}
		if err := e.s.Unblock(e.ctx, b, a); err != nil {
			e.t.Errorf("Unblock of a block that never was: %v", err)
		}
		// Both directions at once are two records.
		if err := e.s.Block(e.ctx, a, b); err != nil {
			e.t.Fatal(err)
		}
		if err := e.s.Block(e.ctx, b, a); err != nil {
			e.t.Fatal(err)
		}
		if err := e.s.Unblock(e.ctx, a, b); err != nil {
			e.t.Fatal(err)
		}
		if blocked(a, b) || !blocked(b, a) {
			e.t.Errorf("after Block both ways and Unblock(a, b): Blocked(a, b) = %v, Blocked(b, a) = %v; want false, true", blocked(a, b), blocked(b, a))
		}
	}},
}

var closedCases = []testCase{
	{"Ping", func(e *env) {
		if err := e.s.Ping(e.ctx); err != nil {
			e.t.Errorf("Ping on an open store: %v", err)
		}
	}},
	{"AfterClose", func(e *env) {
		a, b := addr("alice"), addr("bob")
		e.createApp("messenger")
		e.newGroup("g1", a, b)
		e.send("g1", a, "c-1", "hi")
		e.close()
		ctx := e.ctx
		s := e.s
		calls := map[string]func() error{
			"CreateApp": func() error { return s.CreateApp(ctx, chat.App{ID: "x", CreatedAt: base}) },
			"App":       func() error { _, err := s.App(ctx, "messenger"); return err },
			"Apps":      func() error { _, err := s.Apps(ctx); return err },
			"UpdateApp": func() error {
				_, err := s.UpdateApp(ctx, "messenger", func(*chat.App) error { return nil })
				return err
			},
			"CreateConversation": func() error {
				_, _, _, err := s.CreateConversation(ctx, chat.Conversation{ID: "g2", Kind: chat.Group, Members: []chat.Address{a}, CreatedAt: base, UpdatedAt: base})
				return err
			},
			"Conversation": func() error { _, err := s.Conversation(ctx, "g1"); return err },
			"UpdateMembers": func() error {
				_, _, err := s.UpdateMembers(ctx, "g1", base, func(c *chat.Conversation) error {
					c.Members = append(c.Members, addr("carol"))
					return nil
				})
				return err
			},
			"AppendMessage": func() error {
				_, err := s.AppendMessage(ctx, chat.Message{ConversationID: "g1", Sender: a, ClientID: "c-2", Kind: chat.KindText, Body: "x", SentAt: base})
				return err
			},
			"Messages": func() error { _, err := s.Messages(ctx, "g1", 0, 10); return err },
			"MarkRead": func() error { _, _, err := s.MarkRead(ctx, "g1", b, 1); return err },
			"Conversations": func() error {
				_, _, err := s.Conversations(ctx, a, nil, 10)
				return err
			},
			"Updates": func() error { _, err := s.Updates(ctx, a, 0, 10); return err },
			"Block":   func() error { return s.Block(ctx, a, b) },
			"Unblock": func() error { return s.Unblock(ctx, a, b) },
			"Blocked": func() error { _, err := s.Blocked(ctx, a, b); return err },
			"Ping":    func() error { return s.Ping(ctx) },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, store.ErrClosed) {
				e.t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
			}
		}
	}},
}
