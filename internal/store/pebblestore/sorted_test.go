package pebblestore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// TestSortedBatchLastWriteWins: the batch reaches Pebble in key order, and
// of several writes to one key the last one given stands.
func TestSortedBatchLastWriteWins(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s sortedBatch
	s.set([]byte("m2"), []byte("first"))
	s.set([]byte("a"), []byte("1"))
	s.del([]byte("m2"))
	s.set([]byte("c"), []byte("3"))
	s.set([]byte("m2"), []byte("last"))
	s.set([]byte("b"), []byte("2"))
	s.del([]byte("c"))
	s.set([]byte("d"), []byte("gone"))
	s.del([]byte("d"))
	s.set([]byte("d"), []byte("back"))
	b := s.build(db)
	if s.size() != 0 || len(s.ops) != 0 {
		t.Fatalf("build left %d bytes, %d writes", s.size(), len(s.ops))
	}

	var order []string
	for r := b.Reader(); ; {
		_, k, _, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		order = append(order, string(k))
	}
	want := []string{"a", "b", "c", "c", "d", "d", "d", "m2", "m2", "m2"}
	if len(order) != len(want) {
		t.Fatalf("batch order %q, want %q", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("batch order %q, want %q", order, want)
		}
	}

	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"a": "1", "b": "2", "m2": "last", "d": "back"} {
		got, closer, err := db.Get([]byte(k))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if string(got) != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
		closer.Close()
	}
	if _, _, err := db.Get([]byte("c")); !errors.Is(err, pebble.ErrNotFound) {
		t.Errorf("c: %v, want it deleted", err)
	}
}

// TestSortedBatchOrder: random keys, short and long, with the bytes that
// test a comparison by prefix (0x00 past a shorter key's end, 0xff), reach
// Pebble in bytes.Compare order.
func TestSortedBatchOrder(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{0x00, 0x01, 'a', 'b', 0xff}
	var s sortedBatch
	for range 2000 {
		k := make([]byte, rng.IntN(13))
		for i := range k {
			k[i] = alphabet[rng.IntN(len(alphabet))]
		}
		s.set(k, nil)
	}
	b := s.build(db)
	var prev []byte
	for r, n := b.Reader(), 0; ; n++ {
		_, k, _, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if n != 2000 {
				t.Fatalf("%d writes, want 2000", n)
			}
			break
		}
		if n > 0 && bytes.Compare(prev, k) > 0 {
			t.Fatalf("write %d: % x after % x", n, k, prev)
		}
		prev = append(prev[:0], k...)
	}
}

// BenchmarkSortedBuild sorts the writes of a batch like the WebSocket
// benchmark's: 8 direct conversations, 16 messages each.
//
//	go test -run '^$' -bench SortedBuild ./internal/store/pebblestore/
func BenchmarkSortedBuild(b *testing.B) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	type write struct{ k, v []byte }
	var writes []write
	value := make([]byte, 100)
	for c := range 8 {
		from, to := user(fmt.Sprint("s", c)), user(fmt.Sprint("r", c))
		conv := chat.DirectID(from, to)
		for seq := range int64(16) {
			writes = append(writes,
				write{messageKey(nil, conv, seq+1), value},
				write{updateKey(nil, from, seq+1), value[:34]},
				write{updateKey(nil, to, seq+1), value[:34]},
				write{idemKey(nil, conv, from, fmt.Sprint("client-", seq)), value[:16]})
		}
	}
	var s sortedBatch
	for b.Loop() {
		for _, w := range writes {
			s.set(w.k, w.v)
		}
		s.build(db).Close()
	}
}
