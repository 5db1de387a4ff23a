package storetest

import (
	"fmt"
	"sync"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// Sizes are small on purpose: the point is interleaving, not volume, and
// backends that sync every write run these too.
const (
	workers       = 6
	sendsEachWork = 15
)

// ledger records every delivery the store answered, with the update it
// promised at that cursor, so that streams can be checked against it.
type ledger struct {
	t    testingT
	mu   sync.Mutex
	want map[chat.Address]map[int64]chat.Update
}

// testingT is the part of *testing.T the ledger uses from goroutines.
type testingT interface {
	Errorf(format string, args ...any)
}

func newLedger(t testingT) *ledger {
	return &ledger{t: t, want: map[chat.Address]map[int64]chat.Update{}}
}

func (l *ledger) add(what string, ds []chat.Delivery, u chat.Update) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range ds {
		m := l.want[d.User]
		if m == nil {
			m = map[int64]chat.Update{}
			l.want[d.User] = m
		}
		if prev, dup := m[d.Cursor]; dup {
			l.t.Errorf("%s: cursor %d of %s was handed out twice, before for %s", what, d.Cursor, d.User, show(prev))
		}
		u.Cursor = d.Cursor
		m[d.Cursor] = u
	}
}

// check compares every recorded user's stream with the ledger: cursors
// 1..n with n the number of deliveries, each holding what was promised, and
// per conversation the messages in seq order and each reader's positions
// rising.
func (e *env) check(l *ledger) {
	e.t.Helper()
	for user, want := range l.want {
		s := e.stream(user)
		if len(s) != len(want) {
			e.t.Errorf("stream of %s has %d updates; the store answered %d deliveries to it", user, len(s), len(want))
		}
		lastSeq := map[string]int64{}
		lastRead := map[string]int64{}
		for _, u := range s {
			wantUpdateShape(e.t, u)
			w, ok := want[u.Cursor]
			if !ok {
				e.t.Errorf("stream of %s holds cursor %d that no delivery named: %s", user, u.Cursor, show(u))
				continue
			}
			wantEqual(e.t, fmt.Sprintf("%s's update at cursor %d", user, u.Cursor), u, w)
			switch {
			case u.Message != nil:
				id := u.Message.ConversationID
				if u.Message.Seq <= lastSeq[id] {
					e.t.Errorf("stream of %s: seq %d of %s at cursor %d after seq %d", user, u.Message.Seq, id, u.Cursor, lastSeq[id])
				}
				lastSeq[id] = u.Message.Seq
			case u.Type == chat.UpdateRead:
				k := u.ConversationID + "/" + string(u.Reader)
				if u.Seq <= lastRead[k] {
					e.t.Errorf("stream of %s: %s read %s up to %d at cursor %d after %d", user, u.Reader, u.ConversationID, u.Seq, u.Cursor, lastRead[k])
				}
				lastRead[k] = u.Seq
			}
		}
	}
}

// wantAllMessages checks that conversation id holds exactly the messages
// sent: seqs n..1 without gap or duplicate, each as answered.
func (e *env) wantAllMessages(id string, sent map[int64]chat.Message) {
	e.t.Helper()
	n := int64(len(sent))
	if got := e.conv(id).LastSeq; got != n {
		e.t.Errorf("%s: LastSeq = %d after %d appends", id, got, n)
	}
	list := e.messages(id, 0, int(n)+10)
	if int64(len(list)) != n {
		e.t.Errorf("%s: %d messages stored after %d appends", id, len(list), n)
	}
	for i, m := range list {
		if want := n - int64(i); m.Seq != want {
			e.t.Errorf("%s: message %d of the history has seq %d, want %d", id, i, m.Seq, want)
			continue
		}
		wantEqual(e.t, fmt.Sprintf("%s: seq %d", id, m.Seq), m, sent[m.Seq])
	}
}

var concurrentCases = []testCase{
	{"SameClientID", func(e *env) {
		// A client retrying a send while the first attempt is in flight:
		// one message, and every attempt answers it.
		a, b := addr("alice"), addr("bob")
		e.newGroup("g1", a, b)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			answers []store.Appended
		)
		start := make(chan struct{})
		for i := range workers {
			m := e.msg("g1", a, "retry", fmt.Sprintf("attempt %d", i))
			wg.Go(func() {
				<-start
				res, err := e.s.AppendMessage(e.ctx, m)
				if err != nil {
					e.t.Errorf("AppendMessage: %v", err)
					return
				}
				mu.Lock()
				answers = append(answers, res)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if e.t.Failed() {
			return
		}
		var first store.Appended
		created := 0
		for _, res := range answers {
			if res.Created {
				created++
				first = res
			}
		}
		if created != 1 {
			e.t.Fatalf("%d racing sends of one client id: %d say created, want 1", workers, created)
		}
		for _, res := range answers {
			if res.Cursor != first.Cursor {
				e.t.Errorf("a racing repeat answered cursor %d, the created one %d", res.Cursor, first.Cursor)
			}
			wantEqual(e.t, "a racing repeat's message", res.Message, first.Message)
		}
		if got := e.conv("g1").LastSeq; got != 1 {
			e.t.Errorf("LastSeq after racing sends of one client id = %d, want 1", got)
		}
		for _, m := range []chat.Address{a, b} {
			if n := len(e.stream(m)); n != 2 {
				e.t.Errorf("stream of %s has %d updates, want 2 (create, one message)", m, n)
			}
		}
	}},
	{"OneConversation", func(e *env) {
		members := []chat.Address{addr("u0"), addr("u1"), addr("u2"), chat.NewAddress("other", "u3")}
		l := newLedger(e.t)
		c, ds := e.create(e.group("g1", members...))
		l.add("create", ds, convUpdate(c))

		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			sent = map[int64]chat.Message{}
		)
		start := make(chan struct{})
		for w := range workers {
			from := members[w%len(members)]
			msgs := make([]chat.Message, sendsEachWork)
			for i := range msgs {
				msgs[i] = e.msg("g1", from, fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("body %d of %d", i, w))
			}
			wg.Go(func() {
				<-start
				var last int64
				for _, m := range msgs {
					res, err := e.s.AppendMessage(e.ctx, m)
					if err != nil {
						e.t.Errorf("AppendMessage: %v", err)
						return
					}
					if !res.Created {
						e.t.Errorf("AppendMessage %s: Created = false", m.ClientID)
					}
					if res.Message.Seq <= last {
						e.t.Errorf("worker %d got seq %d after seq %d", w, res.Message.Seq, last)
					}
					last = res.Message.Seq
					if got := deliveryMap(e.t, "AppendMessage", res.Deliveries)[from]; got != res.Cursor {
						e.t.Errorf("AppendMessage %s: Cursor %d, sender's delivery %d", m.ClientID, res.Cursor, got)
					}
					if len(res.Deliveries) != len(members) {
						e.t.Errorf("AppendMessage %s: %d deliveries, want %d", m.ClientID, len(res.Deliveries), len(members))
					}
					l.add("AppendMessage "+m.ClientID, res.Deliveries, msgUpdate(res.Message))
					mu.Lock()
					if _, dup := sent[res.Message.Seq]; dup {
						e.t.Errorf("seq %d answered twice", res.Message.Seq)
					}
					sent[res.Message.Seq] = withSeq(m, res.Message.Seq)
					mu.Unlock()
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
	{"SeveralConversations", func(e *env) {
		u := make([]chat.Address, 5)
		for i := range u {
			u[i] = addr(fmt.Sprintf("u%d", i))
		}
		l := newLedger(e.t)
		convs := []chat.Conversation{
			e.group("g1", u[0], u[1], u[2]),
			e.group("g2", u[1], u[2], u[3]),
			e.group("g3", u[0], u[3], u[4]),
			e.direct(u[0], u[4]),
		}
		for i, c := range convs {
			got, ds := e.create(c)
			l.add("create "+c.ID, ds, convUpdate(got))
			convs[i] = got
		}

		type key struct {
			conv string
			user chat.Address
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			sent = map[string]map[int64]chat.Message{}
			read = map[key]int64{} // the furthest position each call answered
		)
		for _, c := range convs {
			sent[c.ID] = map[int64]chat.Message{}
		}
		noteRead := func(k key, seq int64) {
			mu.Lock()
			read[k] = max(read[k], seq)
			mu.Unlock()
		}
		start := make(chan struct{})
		for w := range workers {
			var msgs []chat.Message
			for i := range sendsEachWork {
				c := convs[(w+i)%len(convs)]
				from := c.Members[(w+i)%len(c.Members)]
				msgs = append(msgs, e.msg(c.ID, from, fmt.Sprintf("w%d-%d", w, i), "hi"))
			}
			wg.Go(func() {
				<-start
				for i, m := range msgs {
					res, err := e.s.AppendMessage(e.ctx, m)
					if err != nil {
						e.t.Errorf("AppendMessage: %v", err)
						return
					}
					l.add("AppendMessage "+m.ClientID, res.Deliveries, msgUpdate(res.Message))
					noteRead(key{m.ConversationID, m.Sender}, res.Message.Seq)
					mu.Lock()
					if _, dup := sent[m.ConversationID][res.Message.Seq]; dup {
						e.t.Errorf("%s: seq %d answered twice", m.ConversationID, res.Message.Seq)
					}
					sent[m.ConversationID][res.Message.Seq] = withSeq(m, res.Message.Seq)
					mu.Unlock()
					if i%3 != 2 {
						continue
					}
					// Another member reads up to here, racing other reads
					// and sends.
					c := convs[(w+i)%len(convs)]
					reader := c.Members[(w+i+1)%len(c.Members)]
					pos, ds, err := e.s.MarkRead(e.ctx, m.ConversationID, reader, res.Message.Seq)
					if err != nil {
						e.t.Errorf("MarkRead: %v", err)
						return
					}
					if pos < res.Message.Seq {
						e.t.Errorf("MarkRead(%d) answered %d", res.Message.Seq, pos)
					}
					if len(ds) > 0 {
						if pos != res.Message.Seq {
							e.t.Errorf("MarkRead(%d) moved, but answered %d", res.Message.Seq, pos)
						}
						l.add("MarkRead", ds, readUpdate(m.ConversationID, reader, pos))
					}
					noteRead(key{m.ConversationID, reader}, pos)
				}
			})
		}
		close(start)
		wg.Wait()
		if e.t.Failed() {
			return
		}
		for _, c := range convs {
			e.wantAllMessages(c.ID, sent[c.ID])
			for _, m := range c.Members {
				if got, want := e.readSeq(m, c.ID), read[key{c.ID, m}]; got != want {
					e.t.Errorf("%s's read position in %s = %d, want %d", m, c.ID, got, want)
				}
			}
		}
		e.check(l)
	}},
	{"MembersAndSends", func(e *env) {
		owner, other := addr("owner"), addr("other")
		l := newLedger(e.t)
		c, ds := e.create(e.group("g1", owner, other))
		l.add("create", ds, convUpdate(c))
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			sent = map[int64]chat.Message{}
		)
		start := make(chan struct{})
		const joiners = 5
		for j := range joiners {
			joiner := chat.NewAddress("app2", fmt.Sprintf("j%d", j))
			now := e.now()
			wg.Go(func() {
				<-start
				got, ds, err := e.s.UpdateMembers(e.ctx, "g1", now, func(c *chat.Conversation) error {
					c.Members = append(c.Members, joiner)
					return nil
				})
				if err != nil {
					e.t.Errorf("UpdateMembers: %v", err)
					return
				}
				if !got.HasMember(joiner) {
					e.t.Errorf("UpdateMembers adding %s answered members %v", joiner, got.Members)
				}
				l.add("UpdateMembers", ds, convUpdate(got))
			})
		}
		msgs := make([]chat.Message, 2*sendsEachWork)
		for i := range msgs {
			msgs[i] = e.msg("g1", []chat.Address{owner, other}[i%2], fmt.Sprintf("c-%d", i), "hi")
		}
		wg.Go(func() {
			<-start
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
		close(start)
		wg.Wait()
		if e.t.Failed() {
			return
		}
		final := e.conv("g1")
		if len(final.Members) != 2+joiners {
			e.t.Errorf("after %d concurrent joins the group has members %v: a lost update", joiners, final.Members)
		}
		e.wantAllMessages("g1", sent)
		e.check(l)
		// Each joiner's stream starts with the change that added them and
		// then has every later message.
		for j := range joiners {
			joiner := chat.NewAddress("app2", fmt.Sprintf("j%d", j))
			s := e.stream(joiner)
			if len(s) == 0 || s[0].Conversation == nil || !s[0].Conversation.HasMember(joiner) {
				e.t.Errorf("%s's stream does not start with the change that added them: %s", joiner, show(s))
			}
		}
	}},
}
