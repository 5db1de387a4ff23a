package pebblestore

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// TestRepeatsAcrossFlushes: a client id sent again is answered with its
// first message wherever the record is: indexed before its batch is
// applied and after, in the sstables once a flush moved it (the lookups
// skip the memtables; idem.go), and after a reopen. A memtable of 256 KiB
// makes Pebble flush every few hundred messages on its own, and the test
// forces flushes in between too.
// Most lookups of new ids read only the sstables from before the store
// opened (recent.go).
func TestRepeatsAcrossFlushes(t *testing.T) { testRepeats(t, false, nil) }

// TestRepeatsWhenHashesCollide: the same, with every record's hash the
// same, so that all but one wait in the index by their whole key and every
// lookup must tell the record its hash finds from its own (and the filters
// of recent records hold every hash: every lookup reads every sstable).
func TestRepeatsWhenHashesCollide(t *testing.T) { testRepeats(t, true, nil) }

// TestRepeatsAsRecentFiltersRotate: the same, with filters of recent
// records so small that the oldest go every few hundred sends: the
// sstables that hold their records are read again.
func TestRepeatsAsRecentFiltersRotate(t *testing.T) {
	testRepeats(t, false, newRecentIdem(200, 2))
}

func testRepeats(t *testing.T, collide bool, recent *recentIdem) {
	testRepeatsWith(t, collide, recent, 0)
}

// testRepeatsWith is testRepeats; the store is reopened with openedLimit.
func testRepeatsWith(t *testing.T, collide bool, recent *recentIdem, openedLimit int) {
	dir := t.TempDir()
	opts := testOptions(t)
	opts.MemTableBytes = 256 << 10
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	err = s.submit(ctx, func(w *writer) error {
		if collide {
			w.idem.hash = func([]byte) uint64 { return 7 }
		}
		if recent != nil {
			recent.complete = w.recent.complete // a new store: true
			w.recent = recent
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b := user("a"), user("b")
	mustGroup(t, s, "g", a, b)
	msg := func(id string) chat.Message {
		return chat.Message{ConversationID: "g", Sender: a, ClientID: id, Kind: chat.KindText, Body: "body of " + id, SentAt: t0}
	}
	seqOf := map[string]int64{}
	check := func(s *Store, id string) {
		t.Helper()
		r, err := s.AppendMessage(ctx, msg(id))
		if err != nil {
			t.Fatal(err)
		}
		want, seen := seqOf[id]
		switch {
		case !seen && !r.Created:
			t.Fatalf("%s: a new client id answered as a repeat of seq %d", id, r.Message.Seq)
		case seen && r.Created:
			t.Fatalf("%s: stored again as seq %d, first stored as seq %d", id, r.Message.Seq, want)
		case seen && (r.Message.Seq != want || r.Message.Body != "body of "+id):
			t.Fatalf("%s: repeat answered seq %d %q, want seq %d", id, r.Message.Seq, r.Message.Body, want)
		case !seen:
			seqOf[id] = r.Message.Seq
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		id := fmt.Sprint("c", i)
		check(s, id)
		check(s, id) // at once: the record is indexed
		if i > 0 {
			check(s, fmt.Sprint("c", rng.IntN(i))) // anywhere by now
		}
		if i%500 == 250 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
			check(s, id) // just flushed
		}
		if i == 1500 {
			// Everything into the last level, whose compactions may zero
			// seqnums: the records' own bounds still tell their age.
			if err := s.db.Compact([]byte{0}, []byte{0xff}, true); err != nil {
				t.Fatal(err)
			}
			check(s, id)
		}
	}
	if n := s.db.Metrics().Flush.Count; n < 5 {
		t.Fatalf("%d flushes: the test did not exercise them", n)
	}
	var lookups struct{ all, old, none int }
	var covered uint64
	var sets int
	var complete bool
	s.submit(ctx, func(w *writer) error {
		lookups, covered, sets, complete = w.lookups, w.recent.covered, len(w.recent.sets), w.recent.complete
		return nil
	})
	t.Logf("lookups: %d of every sstable, %d of the older ones, %d of none; %d filters, covered up to seqnum %d", lookups.all, lookups.old, lookups.none, sets, covered)
	switch {
	case collide && lookups.old+lookups.none > 1: // the first send's, before any record
		t.Fatalf("%d lookups skipped sstables though every hash is in the filters", lookups.old+lookups.none)
	case !collide && recent == nil && lookups.none < 2900:
		// A new store: the filters hold every record in it.
		t.Fatalf("%d lookups of no sstable, for 3,000 new ids: the filters did not rule most out", lookups.none)
	case recent != nil && (sets > 2 || covered == 0 || complete || lookups.old < 2000):
		t.Fatalf("%d filters kept, covered up to %d, complete %v, %d lookups of the older sstables: the oldest were not dropped, or their records not looked for", sets, covered, complete, lookups.old)
	}
	// Batches of several sends, repeats among them.
	for i := 0; i < 300; i += 3 {
		batch := []chat.Message{msg(fmt.Sprint("c", i)), msg(fmt.Sprint("n", i)), msg(fmt.Sprint("c", rng.IntN(3000)))}
		res, err := s.AppendMessages(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Created || res[0].Message.Seq != seqOf[batch[0].ClientID] || !res[1].Created || res[2].Created || res[2].Message.Seq != seqOf[batch[2].ClientID] {
			t.Fatalf("batch %d: %+v", i, res)
		}
		seqOf[batch[1].ClientID] = res[1].Message.Seq
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened: the WAL's tail was flushed at open, and every id repeats,
	// once new sends (in a flush of their own) have made the lookups of
	// ids the filters do not hold read only the older sstables; once the
	// records held at open are in filters, new ids are looked up nowhere.
	opts.openedLimit = openedLimit
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "after-reopen")
	check(s, "after-reopen")
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for id := range seqOf {
		check(s, id)
	}
	state := func() (l struct{ all, old, none int }, complete bool) {
		s.submit(ctx, func(w *writer) error { l, complete = w.lookups, w.recent.complete; return nil })
		return l, complete
	}
	l, complete := state()
	if before := len(seqOf) - 1; !collide && l.old < before { // less "after-reopen"
		t.Fatalf("after the reopen, %d lookups of the older sstables only, for %d ids from before", l.old, before)
	}
	if want := openedLimit == 0; complete != want {
		t.Fatalf("after the reopen and %d sends, the filters hold every record: %v, want %v", len(seqOf), complete, want)
	}
	for i := range 100 {
		check(s, fmt.Sprint("new", i))
	}
	after, _ := state()
	if none := after.none - l.none; complete && none < 95 {
		t.Fatalf("%d of 100 new ids looked up nowhere, with the records held at open in filters", none)
	} else if !complete && none > 0 {
		t.Fatalf("%d new ids looked up nowhere, with the records held at open not in filters", none)
	}
}

// Past the budget, the records a store holds at open are not put in
// filters: new ids are looked up in the sstables from before, and repeats
// are still found.
func TestTooManyRecordsForFilters(t *testing.T) { testRepeatsLimited(t, 100) }

func testRepeatsLimited(t *testing.T, limit int) { testRepeatsWith(t, false, nil, limit) }

// TestRecordsWithoutBoundAreRead: an idempotency record as older versions
// wrote it (seq and cursor, no seqnum bound), in an sstable made since the
// store opened, is still found by a lookup that the filters of recent
// records send to the older sstables only (recent.go).
func TestRecordsWithoutBoundAreRead(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	a, b := user("a"), user("b")
	mustGroup(t, s, "g", a, b)
	msg := func(id string) chat.Message {
		return chat.Message{ConversationID: "g", Sender: a, ClientID: id, Kind: chat.KindText, Body: id, SentAt: t0}
	}
	first, err := s.AppendMessage(ctx, msg("new"))
	if err != nil {
		t.Fatal(err)
	}
	// As a record from before the bound existed: in the DB, but neither
	// in the writer's index nor in its filters, as in a store that opened
	// with records (so not complete).
	err = s.submit(ctx, func(w *writer) error {
		v := be.AppendUint64(be.AppendUint64(nil, uint64(first.Message.Seq)), uint64(first.Cursor))
		w.b.set(idemKey(nil, "g", a, "old"), v)
		w.recent.complete = false
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := s.AppendMessage(ctx, msg("old"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Created || r.Message.Seq != first.Message.Seq {
		t.Fatalf("a repeat of a record without a bound: created %v seq %d, want the first answer, seq %d", r.Created, r.Message.Seq, first.Message.Seq)
	}
	var old int
	s.submit(ctx, func(w *writer) error { old = w.lookups.old; return nil })
	if old == 0 {
		t.Fatal("the lookup read every sstable; want it sent to the older ones")
	}
}

// A full filter of the records written since open rules out all but about
// 1% of the keys it does not hold (10 bits a record, 7 probes): each one it
// fails to rule out costs a lookup in every sstable. Probes whose stride
// came from the hash bits that also chose the block once let 7.4% through.
func TestRecentFilterFalsePositives(t *testing.T) {
	const n = 1 << 18
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRecentIdem(n, 1)
	for range n {
		r.add(rng.Uint64(), 1)
	}
	fp := 0
	for range n {
		if r.mayHold(rng.Uint64()) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.015 {
		t.Errorf("the filter holds %.2f%% of the keys it was not given; want at most 1.5%%", 100*rate)
	} else {
		t.Logf("false positives: %.2f%%", 100*rate)
	}
}

// A repeat of a message whose batch is not applied yet is answered from the
// writer's own copy (unapplied), the same as the DB answers it later.
func TestRepeatOfUnappliedMessage(t *testing.T) {
	s := openTemp(t)
	a, b := user("a"), user("b")
	mustGroup(t, s, "g", a, b)
	for _, meta := range []string{"", `{"k":[1,2]}`} {
		m := message("g", a, "x"+meta)
		if meta != "" {
			m.Meta = []byte(meta)
		}
		var first, again []store.Appended
		err := s.submit(t.Context(), func(w *writer) error {
			var err error
			if first, err = w.appendMessages([]chat.Message{m}); err != nil {
				return err
			}
			if w.applied >= w.gen {
				t.Error("the batch is applied already: the test reads the DB")
			}
			again, err = w.appendMessages([]chat.Message{m})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		later := mustAppend(t, s, m) // from the DB
		if !first[0].Created || again[0].Created || later.Created {
			t.Fatalf("created: %v, %v, %v; want only the first", first[0].Created, again[0].Created, later.Created)
		}
		for _, r := range []store.Appended{again[0], later} {
			if !reflect.DeepEqual(r.Message, first[0].Message) || r.Cursor != first[0].Cursor {
				t.Errorf("repeat = %+v at %d, want %+v at %d", r.Message, r.Cursor, first[0].Message, first[0].Cursor)
			}
		}
	}
}

// The index's keys fill chunks of the arena, which go once the records in
// them are flushed: records are found across chunks before, and the arena
// does not grow as records come and go.
func TestIdemArenaChunks(t *testing.T) {
	x := newIdemIndex()
	key := func(i int) []byte { return fmt.Appendf(nil, "i%030d", i) }
	const perBatch, batches = 1000, 200 // 32 bytes a key: about 6 MiB in all
	var seq uint64
	maxChunks := 0
	for g := uint64(1); g <= batches; g++ {
		for i := range perBatch {
			k := key(int(g)*perBatch + i)
			x.add(k, x.hash(k), idemRec{seq: int64(g), gen: g})
		}
		seq += perBatch
		x.applied(g, seq)
		// Everything up to 20 batches back is flushed.
		if g > 20 {
			x.dropFlushed(seq - 20*perBatch)
		}
		maxChunks = max(maxChunks, len(x.arena))
		oldest := uint64(1)
		if g > 20 {
			oldest = g - 19
		}
		for _, at := range []uint64{g, oldest} {
			k := key(int(at)*perBatch + perBatch - 1)
			if r, ok := x.get(k, x.hash(k)); !ok || r.gen != at {
				t.Fatalf("batch %d: the record of batch %d not found (%v, %+v)", g, at, ok, r)
			}
		}
	}
	k := key(1 * perBatch)
	if _, ok := x.get(k, x.hash(k)); ok {
		t.Fatal("a flushed record is still indexed")
	}
	if x.first == 0 || maxChunks > 3 {
		t.Fatalf("first chunk %d, at most %d chunks: the arena did not drop chunks, or grew", x.first, maxChunks)
	}
}

func TestQueue(t *testing.T) {
	var q queue[int]
	next, want := 0, 0
	// Pushes outpace pops, then pops catch up, so that push both grows the
	// slice and moves what is left to its front.
	for round := range 50 {
		for range round % 7 {
			q.push(next)
			next++
		}
		for range round % 5 {
			if q.len() == 0 {
				break
			}
			if l := q.last(); *l != next-1 {
				t.Fatalf("last %d, want %d", *l, next-1)
			}
			if got := *q.at(0); got != want {
				t.Fatalf("front %d, want %d", got, want)
			}
			if got := q.pop(); got != want {
				t.Fatalf("pop %d, want %d", got, want)
			}
			want++
		}
		if q.len() != next-want {
			t.Fatalf("len %d, want %d", q.len(), next-want)
		}
	}
	for q.len() > 0 {
		if got := q.pop(); got != want {
			t.Fatalf("pop %d, want %d", got, want)
		}
		want++
	}
	if q.last() != nil || cap(q.s) > 64 {
		t.Fatalf("empty queue: last %v, capacity %d", q.last(), cap(q.s))
	}
}
