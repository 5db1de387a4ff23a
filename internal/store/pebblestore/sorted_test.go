package pebblestore

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
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
