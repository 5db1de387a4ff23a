package pebblestore

import (
	"bytes"
	"slices"

	"github.com/cockroachdb/pebble"
)

// sortedBatch gathers the writes of a batch being built and hands them to
// Pebble in key order. Pebble inserts a batch into its memtable, a skip
// list, in the batch's order, and an insert whose key falls right after the
// previous one reuses its place instead of searching the list from the top.
// The writer's own order (a message, each member's stream, the idempotency
// record, then the next message) jumps across the key space at every write;
// in key order, the writes to one stream or conversation follow one another
// and most inserts find their place at once.
type sortedBatch struct {
	arena []byte // keys and values, back to back
	ops   []sortedOp
}

// sortedOp is a write: the key is arena[k:v], the value arena[v:end].
type sortedOp struct {
	k, v, end int
	del       bool
}

func (s *sortedBatch) set(key, value []byte) {
	k := len(s.arena)
	s.arena = append(s.arena, key...)
	v := len(s.arena)
	s.arena = append(s.arena, value...)
	s.ops = append(s.ops, sortedOp{k: k, v: v, end: len(s.arena)})
}

func (s *sortedBatch) del(key []byte) {
	k := len(s.arena)
	s.arena = append(s.arena, key...)
	s.ops = append(s.ops, sortedOp{k: k, v: len(s.arena), end: len(s.arena), del: true})
}

// size is the bytes gathered so far.
func (s *sortedBatch) size() int { return len(s.arena) }

// build returns the writes as a Pebble batch in key order, and empties s.
// Writes to one key keep their order, so the last one wins, as it would
// have.
func (s *sortedBatch) build(db *pebble.DB) *pebble.Batch {
	a := s.arena
	slices.SortFunc(s.ops, func(x, y sortedOp) int {
		if c := bytes.Compare(a[x.k:x.v], a[y.k:y.v]); c != 0 {
			return c
		}
		return x.k - y.k // written first, first
	})
	// Pebble's record of a write: a kind byte and two varint lengths.
	b := db.NewBatchWithSize(len(a) + 11*len(s.ops))
	for _, op := range s.ops {
		var err error
		if op.del {
			err = b.Delete(a[op.k:op.v], nil)
		} else {
			err = b.Set(a[op.k:op.v], a[op.v:op.end], nil)
		}
		if err != nil {
			// Set and Delete fail only on a committed batch: a bug.
			panic(err)
		}
	}
	s.arena, s.ops = s.arena[:0], s.ops[:0]
	return b
}
