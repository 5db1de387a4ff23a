package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	dirs := map[store.Store]string{}
	var mu sync.Mutex // guards dirs: subtests may run in parallel
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			dir := t.TempDir()
			s := openTest(t, dir)
			mu.Lock()
			dirs[s] = dir
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			mu.Lock()
			dir := dirs[s]
			mu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2 := openTest(t, dir)
			mu.Lock()
			dirs[s2] = dir
			mu.Unlock()
			return s2
		},
	})
}

func testOptions(t testing.TB) *Options {
	return &Options{Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
}

func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, testOptions(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func openTemp(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

func user(name string) chat.Address { return chat.NewAddress("app", name) }

func mustGroup(t *testing.T, s store.Store, id string, members ...chat.Address) chat.Conversation {
	t.Helper()
	c, _, created, err := s.CreateConversation(t.Context(), chat.Conversation{
		ID: id, Kind: chat.Group, Members: members, Creator: members[0], CreatedAt: t0,
	})
	if err != nil || !created {
		t.Fatalf("CreateConversation(%s) = %v, created %v", id, err, created)
	}
	return c
}

func message(conv string, sender chat.Address, clientID string) chat.Message {
	return chat.Message{ConversationID: conv, Sender: sender, ClientID: clientID, Kind: chat.KindText, Body: "body " + clientID, SentAt: t0.Add(time.Second)}
}

func mustAppend(t *testing.T, s store.Store, m chat.Message) store.Appended {
	t.Helper()
	res, err := s.AppendMessage(t.Context(), m)
	if err != nil {
		t.Fatalf("AppendMessage(%s, %s): %v", m.Sender, m.ClientID, err)
	}
	return res
}

// wantStream checks that user's stream has cursors 1..n with no gap and
// returns it.
func wantStream(t *testing.T, s store.Store, u chat.Address, n int) []chat.Update {
	t.Helper()
	list, err := s.Updates(t.Context(), u, 0, n+10)
	if err != nil {
		t.Fatalf("Updates(%s): %v", u, err)
	}
	if len(list) != n {
		t.Fatalf("stream of %s has %d entries, want %d", u, len(list), n)
	}
	for i, up := range list {
		if up.Cursor != int64(i+1) {
			t.Fatalf("stream of %s: entry %d has cursor %d", u, i, up.Cursor)
		}
	}
	return list
}

// Many concurrent senders in one group: seqs 1..n and each member's cursors
// 1..n+1 (the conversation update first), each message once, in seq order.
func TestConcurrentAppendsAreGapless(t *testing.T) {
	s := openTemp(t)
	members := []chat.Address{user("a"), user("b"), user("c"), user("d")}
	mustGroup(t, s, "g1", members...)
	const senders, each = 8, 25
	var (
		mu   sync.Mutex
		seqs = map[int64]bool{}
		wg   sync.WaitGroup
	)
	for i := range senders {
		wg.Go(func() {
			sender := members[i%len(members)]
			for j := range each {
				res, err := s.AppendMessage(t.Context(), message("g1", sender, fmt.Sprintf("%d-%d", i, j)))
				if err != nil {
					t.Errorf("AppendMessage: %v", err)
					return
				}
				mu.Lock()
				if seqs[res.Message.Seq] {
					t.Errorf("seq %d given twice", res.Message.Seq)
				}
				seqs[res.Message.Seq] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	const n = senders * each
	for seq := int64(1); seq <= n; seq++ {
		if !seqs[seq] {
			t.Fatalf("seq %d missing", seq)
		}
	}
	for _, m := range members {
		list := wantStream(t, s, m, n+1)
		for i, up := range list[1:] {
			if up.Type != chat.UpdateMessage || up.Message.Seq != int64(i+1) {
				t.Fatalf("stream of %s at cursor %d: %+v, want message seq %d", m, up.Cursor, up, i+1)
			}
		}
	}
	c, err := s.Conversation(t.Context(), "g1")
	if err != nil || c.LastSeq != n {
		t.Fatalf("Conversation = %+v, %v; want LastSeq %d", c, err, n)
	}
}

func TestIdempotentAppend(t *testing.T) {
	s := openTemp(t)
	a, b := user("a"), user("b")
	mustGroup(t, s, "g1", a, b)
	first := mustAppend(t, s, message("g1", a, "x"))
	again := message("g1", a, "x")
	again.Body = "ignored"
	second := mustAppend(t, s, again)
	if second.Created || second.Deliveries != nil || second.Message.Seq != first.Message.Seq ||
		second.Cursor != first.Cursor || second.Message.Body != first.Message.Body {
		t.Fatalf("repeat = %+v, want the first result %+v with Created false", second, first)
	}
	wantStream(t, s, b, 2)

	// Racing repeats of one new client id (they likely share a batch) make
	// one message.
	var wg sync.WaitGroup
	results := make([]store.Appended, 16)
	for i := range results {
		wg.Go(func() {
			res, err := s.AppendMessage(t.Context(), message("g1", b, "y"))
			if err != nil {
				t.Errorf("AppendMessage: %v", err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		if r.Created {
			created++
		}
		if r.Message.Seq != 2 || r.Cursor != 3 {
			t.Errorf("racing repeat got seq %d cursor %d, want 2 and 3", r.Message.Seq, r.Cursor)
		}
	}
	if created != 1 {
		t.Errorf("%d racing sends created a message, want 1", created)
	}
	wantStream(t, s, a, 3)
}

// A failing request in a batch leaves the others alone.
func TestFailuresDoNotSpoilTheBatch(t *testing.T) {
	s := openTemp(t)
	a, b := user("a"), user("b")
	mustGroup(t, s, "g1", a, b)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			m := message("g1", a, fmt.Sprint(i))
			if i%2 == 1 {
				m.Sender = user("stranger")
				if _, err := s.AppendMessage(t.Context(), m); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("append by a non-member: %v, want ErrNotFound", err)
				}
				return
			}
			mustAppend(t, s, m)
		})
	}
	wg.Wait()
	wantStream(t, s, b, 17)
	if list, _ := s.Updates(t.Context(), user("stranger"), 0, 10); len(list) != 0 {
		t.Errorf("the stranger has a stream: %+v", list)
	}
}

func TestReopenContinuesNumbering(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	a, b := user("a"), user("b")
	mustGroup(t, s, "g1", a, b)
	mustAppend(t, s, message("g1", a, "1"))
	if _, _, err := s.MarkRead(t.Context(), "g1", b, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	res := mustAppend(t, s, message("g1", b, "2"))
	if res.Message.Seq != 2 || res.Cursor != 4 {
		t.Fatalf("after reopen: seq %d cursor %d, want 2 and 4", res.Message.Seq, res.Cursor)
	}
	again := mustAppend(t, s, message("g1", a, "1"))
	if again.Created || again.Message.Seq != 1 || again.Cursor != 2 {
		t.Fatalf("repeat after reopen = %+v, want seq 1, cursor 2, not created", again)
	}
	wantStream(t, s, a, 4)
	list := wantStream(t, s, b, 4)
	if list[2].Type != chat.UpdateRead || list[2].Seq != 1 || list[2].Reader != b {
		t.Errorf("read update after reopen = %+v", list[2])
	}
}

func TestClose(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustGroup(t, s, "g1", user("a"), user("b"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(t.Context(), message("g1", user("a"), "1")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Conversation(t.Context(), "g1"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("read after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
}

// Writers racing Close either succeed (and are on disk) or fail with
// ErrClosed; none hangs.
func TestCloseWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	a, b := user("a"), user("b")
	mustGroup(t, s, "g1", a, b)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		acks []int64
	)
	started := make(chan struct{}, 16)
	for i := range 16 {
		wg.Go(func() {
			for j := 0; ; j++ {
				res, err := s.AppendMessage(context.Background(), message("g1", a, fmt.Sprintf("%d-%d", i, j)))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("AppendMessage: %v", err)
					return
				}
				mu.Lock()
				acks = append(acks, res.Message.Seq)
				mu.Unlock()
				if j == 0 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 16 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = openTest(t, dir)
	defer s.Close()
	c, err := s.Conversation(t.Context(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	if c.LastSeq != int64(len(acks)) {
		t.Errorf("LastSeq %d after %d acknowledged appends", c.LastSeq, len(acks))
	}
	for _, seq := range acks {
		if seq > c.LastSeq {
			t.Errorf("acknowledged seq %d is lost", seq)
		}
	}
}

// A request whose context ends while it waits in the queue writes nothing.
func TestCancelledWhileQueued(t *testing.T) {
	s := openTemp(t)
	a, b := user("a"), user("b")
	mustGroup(t, s, "g1", a, b)
	// Hold the writer in a request until the cancelled one is queued.
	hold, release := make(chan struct{}), make(chan struct{})
	go s.submit(context.Background(), func(*writer) error {
		close(hold)
		<-release
		return nil
	})
	<-hold
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := s.AppendMessage(ctx, message("g1", a, "1"))
		errc <- err
	}()
	// Wait until the append sits in the queue, then cancel it.
	for len(s.reqs) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled append: %v, want context.Canceled", err)
	}
	close(release)
	res := mustAppend(t, s, message("g1", a, "2"))
	if res.Message.Seq != 1 {
		t.Errorf("next append got seq %d, want 1: the cancelled one wrote", res.Message.Seq)
	}
}

// The conversation list moves a conversation to the top on each append and
// pages without loss or repeat.
func TestConversationListOrder(t *testing.T) {
	s := openTemp(t)
	a, b := user("a"), user("b")
	ids := []string{"g1", "g2", "g3", "g4", "g5"}
	for _, id := range ids {
		mustGroup(t, s, id, a, b) // all at t0: ordered by id, descending
	}
	m := message("g2", b, "1")
	m.SentAt = t0.Add(time.Minute)
	mustAppend(t, s, m)
	want := []string{"g2", "g5", "g4", "g3", "g1"}
	var got []string
	var page *store.Page
	for {
		list, next, err := s.Conversations(t.Context(), a, page, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, sum := range list {
			got = append(got, sum.ID)
		}
		if next == nil {
			break
		}
		page = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list = %v, want %v", got, want)
	}
	list, _, err := s.Conversations(t.Context(), b, nil, 1)
	if err != nil || len(list) != 1 {
		t.Fatalf("Conversations(b) = %v, %v", list, err)
	}
	if sum := list[0]; sum.ReadSeq != 1 || sum.LastMessage == nil || sum.LastMessage.Body != m.Body || !sum.UpdatedAt.Equal(m.SentAt) {
		t.Errorf("summary for the sender = %+v", sum)
	}
}

func TestListKeyOrder(t *testing.T) {
	u := user("a")
	keys := [][]byte{
		listKey(nil, u, 20, "b"),
		listKey(nil, u, 20, "ab"),
		listKey(nil, u, 20, "a"),
		listKey(nil, u, 10, "z"),
		listKey(nil, u, -5, "z"),
	}
	for i := 1; i < len(keys); i++ {
		if string(keys[i-1]) >= string(keys[i]) {
			t.Errorf("key %d does not sort before key %d", i-1, i)
		}
	}
	at, id, err := parseListKey(keys[1], len(listPrefix(nil, u)))
	if err != nil || at != 20 || id != "ab" {
		t.Errorf("parseListKey = %d, %q, %v", at, id, err)
	}
}

// Readers do not see stream entries and messages that are not durable yet
// (the gate's marks); they see them once the marks go.
func TestReadsStopAtTheDurableGate(t *testing.T) {
	s := openTemp(t)
	a, b := user("a"), user("b")
	mustGroup(t, s, "g1", a, b)
	mustAppend(t, s, message("g1", a, "1"))
	mustAppend(t, s, message("g1", a, "2"))
	// As if cursor 3 of b and seq 2 were applied but not yet synced.
	s.gate.add(99, []*stream{{user: b, first: 3}}, map[string]int64{"g1": 2})
	if list, err := s.Updates(t.Context(), b, 0, 10); err != nil || len(list) != 2 {
		t.Errorf("Updates behind the gate = %d entries, %v; want 2", len(list), err)
	}
	if list, err := s.Updates(t.Context(), b, 2, 10); err != nil || len(list) != 0 {
		t.Errorf("Updates after 2 behind the gate = %d entries, %v; want 0", len(list), err)
	}
	if list, err := s.Messages(t.Context(), "g1", 0, 10); err != nil || len(list) != 1 || list[0].Seq != 1 {
		t.Errorf("Messages behind the gate = %+v, %v; want seq 1 only", list, err)
	}
	// A later batch appends to the same stream before 99 is durable: once
	// 99 is, the gate moves to the later batch's first entry, not past it.
	s.gate.add(100, []*stream{{user: b, first: 4}}, nil)
	s.gate.durable(&built{gen: 99, users: []chat.Address{b}, convs: []string{"g1"}})
	wantStream(t, s, b, 3)
	s.gate.durable(&built{gen: 100, users: []chat.Address{b}})
	if list, err := s.Messages(t.Context(), "g1", 0, 10); err != nil || len(list) != 2 {
		t.Errorf("Messages after the gate opened = %d, %v; want 2", len(list), err)
	}
}

// Appends and member changes racing in shared batches leave exactly one
// list entry per member, at the conversation's UpdatedAt, and none for
// those who left.
func TestListEntriesUnderRacingMemberChanges(t *testing.T) {
	s := openTemp(t)
	a, b, c, d := user("a"), user("b"), user("c"), user("d")
	mustGroup(t, s, "g1", a, b)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 20 {
				m := message("g1", a, fmt.Sprintf("%d-%d", i, j))
				m.SentAt = t0.Add(time.Duration(i*100+j) * time.Second)
				mustAppend(t, s, m)
			}
		})
	}
	wg.Go(func() {
		for j := range 10 {
			joiner := c
			if j%2 == 1 {
				joiner = d
			}
			_, _, err := s.UpdateMembers(t.Context(), "g1", t0.Add(time.Duration(j)*time.Minute), func(conv *chat.Conversation) error {
				conv.Members = []chat.Address{a, b, joiner}
				return nil
			})
			if err != nil {
				t.Errorf("UpdateMembers: %v", err)
			}
		}
	})
	wg.Wait()
	conv, err := s.Conversation(t.Context(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []chat.Address{a, b, c, d} {
		prefix := listPrefix(nil, u)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		var at []int64
		for ok := it.First(); ok; ok = it.Next() {
			n, _, err := parseListKey(it.Key(), len(prefix))
			if err != nil {
				t.Fatal(err)
			}
			at = append(at, n)
		}
		it.Close()
		if !conv.HasMember(u) {
			if len(at) != 0 {
				t.Errorf("%s left but has list entries %v", u, at)
			}
			continue
		}
		if len(at) != 1 || at[0] != conv.UpdatedAt.UnixNano() {
			t.Errorf("%s has list entries at %v, want one at %d", u, at, conv.UpdatedAt.UnixNano())
		}
	}
}

// A writer cache far smaller than the working set is dropped again and
// again; numbering still comes out right, read back from the DB.
func TestTinyWriterCache(t *testing.T) {
	opts := testOptions(t)
	opts.CacheEntries = 2
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const groups, each = 6, 15
	for g := range groups {
		mustGroup(t, s, fmt.Sprint("g", g), user(fmt.Sprint("u", g)), user("shared"))
	}
	var wg sync.WaitGroup
	for g := range groups {
		wg.Go(func() {
			for j := range each {
				res := mustAppend(t, s, message(fmt.Sprint("g", g), user(fmt.Sprint("u", g)), fmt.Sprint(j)))
				if res.Message.Seq != int64(j+1) || res.Cursor != int64(j+2) {
					t.Errorf("g%d append %d: seq %d cursor %d", g, j, res.Message.Seq, res.Cursor)
				}
			}
		})
	}
	wg.Wait()
	wantStream(t, s, user("shared"), groups*(each+1))
}

// An append writes no head record: a conversation's LastSeq and UpdatedAt
// come from its record or, when newer, its last message. Both must survive
// a reopen, before and after a membership change, and in the cache-cold
// writer too.
func TestHeadDerivedAfterReopen(t *testing.T) {
	dir := t.TempDir()
	a, b, c := user("a"), user("b"), user("c")
	check := func(s *Store, seq int64, at time.Time) {
		t.Helper()
		got, err := s.Conversation(t.Context(), "g")
		if err != nil {
			t.Fatal(err)
		}
		if got.LastSeq != seq || !got.UpdatedAt.Equal(at) {
			t.Fatalf("LastSeq %d, UpdatedAt %v; want %d, %v", got.LastSeq, got.UpdatedAt, seq, at)
		}
	}
	s := openTest(t, dir)
	mustGroup(t, s, "g", a, b)
	check(s, 0, t0)
	mustAppend(t, s, message("g", a, "1"))
	m2 := message("g", b, "2")
	m2.SentAt = t0.Add(2 * time.Second)
	mustAppend(t, s, m2)
	check(s, 2, m2.SentAt)
	s.Close()

	s = openTest(t, dir)
	check(s, 2, m2.SentAt)
	changed := t0.Add(time.Minute)
	if _, _, err := s.UpdateMembers(t.Context(), "g", changed, func(c2 *chat.Conversation) error {
		c2.Members = append(c2.Members, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check(s, 2, changed)
	s.Close()

	s = openTest(t, dir)
	defer s.Close()
	check(s, 2, changed)
	// The writer loads the conversation afresh: numbering goes on.
	m3 := message("g", c, "3")
	m3.SentAt = t0.Add(2 * time.Minute)
	if res := mustAppend(t, s, m3); res.Message.Seq != 3 {
		t.Fatalf("seq %d after reopen, want 3", res.Message.Seq)
	}
	check(s, 3, m3.SentAt)
}
