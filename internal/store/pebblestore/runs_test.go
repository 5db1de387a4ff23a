package pebblestore

import (
	"fmt"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
)

// The message entries a batch gives a stream are stored as runs, one key
// each (messageRun). Reads expand them from any cursor with any limit, as
// the memory store, which stores each entry alone, reads its streams; and
// after a reopen the stream goes on after a run's last entry.
func TestRunsReadAsSingleEntries(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mem := memstore.New()
	a, b, c := user("a"), user("b"), user("c")
	both := []store.Store{s, mem}
	for _, st := range both {
		mustGroup(t, st, "p", a, b)
		mustGroup(t, st, "q", a, c)
	}
	batch := func(conv string, sender chat.Address, tag string, n int) {
		t.Helper()
		ms := make([]chat.Message, n)
		for i := range ms {
			ms[i] = message(conv, sender, fmt.Sprintf("%s%d", tag, i))
		}
		for _, st := range both {
			if _, err := st.(store.BatchAppender).AppendMessages(t.Context(), ms); err != nil {
				t.Fatalf("AppendMessages(%s, %d): %v", tag, n, err)
			}
		}
	}
	batch("p", a, "x", 7)
	batch("p", b, "y", 5)
	for _, st := range both {
		if _, _, err := st.MarkRead(t.Context(), "p", a, 12); err != nil {
			t.Fatalf("MarkRead: %v", err)
		}
	}
	batch("q", c, "z", 4)
	batch("p", a, "w", maxRun+476) // two runs
	const entries = 1 + 1 + 7 + 5 + 1 + 4 + maxRun + 476

	// a's stream: two conversation entries, one read entry, and 5 runs.
	if n := streamKeys(t, s, a); n != 8 {
		t.Errorf("a's stream has %d keys for %d entries, want 8", n, entries)
	}
	compareStreams(t, s, mem, a, entries)
	compareStreams(t, s, mem, b, 1+7+5+1+maxRun+476)

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openTest(t, dir)
	t.Cleanup(func() { s.Close() })
	both[0] = s
	batch("p", b, "v", 2)
	compareStreams(t, s, mem, a, entries+2)
	wantStream(t, s, a, entries+2)
}

// streamKeys counts the keys of user's stream.
func streamKeys(t *testing.T, s *Store, user chat.Address) int {
	t.Helper()
	prefix := updatePrefix(nil, user)
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.SeekGE(prefix); ok && string(it.Key()[:len(prefix)]) == string(prefix); ok = it.Next() {
		n++
	}
	return n
}

// compareStreams reads user's stream of n entries from every cursor, with
// limits that end inside and outside runs, from both stores.
func compareStreams(t *testing.T, s, mem store.Store, user chat.Address, n int) {
	t.Helper()
	for after := int64(-1); after <= int64(n)+1; after++ {
		limits := []int{1, 3, 50}
		if after%100 == 0 || after > int64(n)-10 {
			limits = append(limits, n+5)
		}
		for _, limit := range limits {
			got, err := s.Updates(t.Context(), user, after, limit)
			if err != nil {
				t.Fatalf("Updates(%s, %d, %d): %v", user, after, limit, err)
			}
			want, err := mem.Updates(t.Context(), user, after, limit)
			if err != nil {
				t.Fatalf("memstore Updates: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("Updates(%s, after %d, limit %d): %d updates, want %d", user, after, limit, len(got), len(want))
			}
			for i := range got {
				if g, w := describe(got[i]), describe(want[i]); g != w {
					t.Fatalf("Updates(%s, after %d, limit %d)[%d] = %s, want %s", user, after, limit, i, g, w)
				}
			}
		}
	}
}

func describe(u chat.Update) string {
	s := fmt.Sprintf("%d %s", u.Cursor, u.Type)
	switch {
	case u.Message != nil:
		s += fmt.Sprintf(" %s/%d %s %s %q", u.Message.ConversationID, u.Message.Seq, u.Message.Sender, u.Message.ClientID, u.Message.Body)
	case u.Conversation != nil:
		s += " " + u.Conversation.ID
	default:
		s += fmt.Sprintf(" %s %s %d", u.ConversationID, u.Reader, u.Seq)
	}
	return s
}

// A stored entry's count: 1 for every kind but a run; damaged runs are
// refused.
func TestEntryCount(t *testing.T) {
	for _, c := range []struct {
		v    []byte
		n    int
		fail bool
	}{
		{v: encodeMessageRun(nil, "p", 4, 1), n: 1},
		{v: encodeMessageRun(nil, "p", 4, 9), n: 9},
		{v: encodeReadEntry(nil, "p", user("a"), 3), n: 1},
		{v: encodeMessageRun(nil, "p", 4, 9)[:12], fail: true},
		{v: []byte{entryMessages, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 'p'}, fail: true}, // a run of 1
		{v: []byte{entryMessage, 1}, fail: true},
		{v: nil, fail: true},
	} {
		n, err := entryCount(c.v)
		if (err != nil) != c.fail || (!c.fail && n != c.n) {
			t.Errorf("entryCount(%q) = %d, %v; want %d, failure %v", c.v, n, err, c.n, c.fail)
		}
	}
}
