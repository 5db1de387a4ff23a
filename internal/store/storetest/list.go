package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var listCases = []testCase{
	{"Order", func(e *env) {
		a, b, c := addr("alice"), addr("bob"), addr("carol")
		g1 := e.newGroup("g1", a, b)
		g2 := e.newGroup("g2", a, c)
		tie := e.now()
		g3 := e.group("g3", a, b)
		g3.CreatedAt, g3.UpdatedAt = tie, tie
		g4 := e.group("g4", a, b)
		g4.CreatedAt, g4.UpdatedAt = tie, tie
		e.create(g4)
		e.create(g3)
		m1 := e.send("g1", b, "c-1", "moves g1 to the top").Message
		g1.LastSeq, g1.UpdatedAt = 1, m1.SentAt

		// alice: g1 (latest), then g4 and g3 tied (higher id first), then g2.
		want := []chat.Summary{
			{Conversation: g1, ReadSeq: 0, LastMessage: &m1},
			{Conversation: g4},
			{Conversation: g3},
			{Conversation: g2},
		}
		list, next, err := e.s.Conversations(e.ctx, a, nil, 10)
		if err != nil {
			e.t.Fatalf("Conversations: %v", err)
		}
		wantEqual(e.t, "alice's conversations", list, want)
		if next != nil {
			e.t.Errorf("next = %+v on a page holding the whole list, want nil", next)
		}
		wantB := []chat.Summary{{Conversation: g1, ReadSeq: 1, LastMessage: &m1}, {Conversation: g4}, {Conversation: g3}}
		wantEqual(e.t, "bob's conversations", e.summaries(b), wantB)
		wantEqual(e.t, "carol's conversations", e.summaries(c), []chat.Summary{{Conversation: g2}})
		list, next, err = e.s.Conversations(e.ctx, addr("nobody"), nil, 10)
		if err != nil || len(list) != 0 || next != nil {
			e.t.Errorf("Conversations of a user in none = %s, %+v, %v; want nothing", show(list), next, err)
		}

		// A later message and a read move the summary along.
		m2 := e.send("g2", c, "c-1", "now g2").Message
		if _, _, err := e.s.MarkRead(e.ctx, "g2", a, 1); err != nil {
			e.t.Fatalf("MarkRead: %v", err)
		}
		g2.LastSeq, g2.UpdatedAt = 1, m2.SentAt
		want = append([]chat.Summary{{Conversation: g2, ReadSeq: 1, LastMessage: &m2}}, want[:3]...)
		wantEqual(e.t, "alice's conversations after a message in g2", e.summaries(a), want)
	}},
	{"Paging", func(e *env) {
		a, b := addr("alice"), addr("bob")
		const n = 20
		var want []chat.Summary
		start := e.now()
		for i := range n {
			// Pairs share a time, and ids do not follow creation order, so
			// that ties fall across page boundaries.
			c := e.group(fmt.Sprintf("g%02d", (i*7)%n), a, b)
			c.CreatedAt = start.Add(time.Duration(i/2) * time.Second)
			c.UpdatedAt = c.CreatedAt
			e.create(c)
			want = append(want, chat.Summary{Conversation: c})
		}
		e.clock = start.Add(n * time.Second)
		// A few messages move conversations up; one lands on another's time.
		for _, i := range []int{3, 11, 0} {
			m := e.send(want[i].ID, b, "c-1", "hi").Message
			want[i].LastSeq, want[i].UpdatedAt, want[i].LastMessage = 1, m.SentAt, &m
		}
		m := e.msg(want[5].ID, b, "c-1", "back in time")
		m.SentAt = want[8].UpdatedAt
		res, err := e.s.AppendMessage(e.ctx, m)
		if err != nil {
			e.t.Fatalf("AppendMessage: %v", err)
		}
		want[5].LastSeq, want[5].UpdatedAt, want[5].LastMessage = 1, m.SentAt, &res.Message
		slices.SortFunc(want, func(x, y chat.Summary) int {
			if c := y.UpdatedAt.Compare(x.UpdatedAt); c != 0 {
				return c
			}
			return cmp.Compare(y.ID, x.ID)
		})

		for _, limit := range []int{1, 3, 4, 5, 7, n - 1, n, n + 1, 200} {
			var got []chat.Summary
			var page *store.Page
			for pages := 1; ; pages++ {
				list, next, err := e.s.Conversations(e.ctx, a, page, limit)
				if err != nil {
					e.t.Fatalf("Conversations(limit %d, page %d): %v", limit, pages, err)
				}
				got = append(got, list...)
				rest := n - len(got)
				if wantLen := min(limit, n-(len(got)-len(list))); len(list) != wantLen {
					e.t.Errorf("limit %d, page %d: %d entries, want %d", limit, pages, len(list), wantLen)
				}
				if rest <= 0 || len(list) == 0 {
					if next != nil {
						e.t.Errorf("limit %d, page %d holds the last entry but next = %+v, want nil", limit, pages, next)
					}
					break
				}
				if next == nil {
					e.t.Errorf("limit %d, page %d: next = nil with %d entries left", limit, pages, rest)
					break
				}
				last := list[len(list)-1]
				wantEqual(e.t, fmt.Sprintf("limit %d, page %d: next", limit, pages), next, &store.Page{UpdatedAt: last.UpdatedAt, ID: last.ID})
				// Go through the opaque token, as the API does.
				page, err = store.ParsePage(next.Token())
				if err != nil {
					e.t.Fatalf("ParsePage(next.Token()): %v", err)
				}
				if pages > n+1 {
					e.t.Fatalf("limit %d: more than %d pages", limit, n+1)
				}
			}
			wantEqual(e.t, fmt.Sprintf("all pages with limit %d", limit), got, want)
		}
	}},
}
