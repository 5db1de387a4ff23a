package pebblestore

import (
	"bytes"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
)

// Idempotency lookups skip the memtables.
//
// Every append looks its client id up, and the id is almost never there.
// A Pebble Get for a missing key searches each memtable's skip list (cache
// misses at every level; Pebble keeps no filter on memtables) before the
// sstables' bloom filters answer: it was the writer's largest cost. The
// writer is the only one to write idempotency records, so it can know all
// those still in a memtable: it keeps them in pending after their batch is
// applied, until Pebble reports (FlushEnd) a flush that put them in
// sstables. A lookup reads pending, and else only the sstables, through an
// iterator that ignores the memtables, made at most once per batch. Open
// flushes what the WAL replayed, so that no memtable holds a record the
// writer did not see.

// appliedBatch tells the writer that batch gen is applied; last is the
// seqnum of its last write (0: it wrote nothing).
type appliedBatch struct {
	gen, last uint64
}

// keptIdem is the idempotency records of an applied batch, kept in pending
// until a flush has covered seqnum last.
type keptIdem struct {
	gen, last uint64
	keys      []string
}

// flushWatch records the highest seqnum flushed to sstables so far.
type flushWatch struct{ seq atomic.Uint64 }

func (f *flushWatch) flushEnd(info pebble.FlushInfo) {
	if info.Err != nil {
		return
	}
	for _, t := range info.Output {
		for {
			cur := f.seq.Load()
			if t.LargestSeqNum <= cur || f.seq.CompareAndSwap(cur, t.LargestSeqNum) {
				break
			}
		}
	}
}

// dropFlushed drops from pending the idempotency records that a flush has
// put in sstables. It runs before a batch's first lookup.
func (w *writer) dropFlushed() {
	flushed := w.flushed.seq.Load()
	n := 0
	for _, k := range w.kept {
		if k.last > flushed {
			break
		}
		for _, key := range k.keys {
			if p, ok := w.pending[key]; ok && p.gen == k.gen {
				delete(w.pending, key)
			}
		}
		n++
	}
	if n > 0 {
		w.kept = append(w.kept[:0], w.kept[n:]...)
	}
}

// getIdem reads an idempotency record as of the batch being built.
func (w *writer) getIdem(key []byte, fn func(v []byte) error) (found bool, err error) {
	if p, ok := w.pending[string(key)]; ok {
		if p.deleted {
			return false, nil
		}
		return true, fn(p.v)
	}
	if w.sst == nil {
		w.sst, err = w.db.NewIter(&pebble.IterOptions{
			LowerBound:                []byte{pIdem},
			UpperBound:                []byte{pIdem + 1},
			OnlyReadGuaranteedDurable: true, // the sstables alone
			UseL6Filters:              true, // most lookups find nothing
		})
		if err != nil {
			return false, err
		}
	}
	if w.sst.SeekPrefixGE(key) && bytes.Equal(w.sst.Key(), key) {
		return true, fn(w.sst.Value())
	}
	return false, w.sst.Error()
}

// endLookups closes the batch's sstable iterator: it holds its sstables.
func (w *writer) endLookups() {
	if w.sst != nil {
		w.sst.Close()
		w.sst = nil
	}
}
