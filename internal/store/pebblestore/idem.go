package pebblestore

import (
	"bytes"
	"hash/maphash"
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
// those still in a memtable: it indexes them (idemIndex) from their write
// until Pebble reports (FlushEnd) a flush that put them in sstables. A
// lookup reads the index, and else only the sstables, through an iterator
// that ignores the memtables, made at most once per batch. Open flushes
// what the WAL replayed, so that no memtable holds a record the writer did
// not see.
//
// The index holds some hundred thousand records (a memtable or two of
// them), and most lookups miss it, so it is kept small and without
// pointers, which the garbage collector would scan: records are found by a
// 64-bit hash of their key, and their keys wait, back to back, in one byte
// arena, against which a hit is checked. Records leave in the order they
// came (by batch, once flushed), so the arena is a queue: of chunks of 1
// MiB, which go back to a free list once their keys have all left, so
// that the arena is neither grown nor copied as records come and go. A
// record whose
// hash another record holds goes to a map by its whole key instead, which
// is almost always empty.

// appliedBatch tells the writer that batch gen is applied; first and last
// are the seqnums of its first and last writes (0: it wrote nothing).
type appliedBatch struct {
	gen, first, last uint64
}

// idemRec is an indexed idempotency record: the seq and sender's cursor it
// holds, the batch that wrote it, and where its key is in the arena.
type idemRec struct {
	seq, cursor int64
	gen         uint64
	at          uint64 // the key's offset in the arena, counted from its start ever
	n           int
}

// idemIndex indexes the idempotency records not yet known to be flushed.
type idemIndex struct {
	hash   func(key []byte) uint64 // a test may make every key collide
	byHash map[uint64]idemRec
	byKey  map[string]idemRec // records whose hash byHash gives another
	// batches lists, in batch order, the batches with records here: those
	// applied and waiting for a flush to cover them, then those not yet
	// applied. hashes and keys list their records (by hash for byHash, by
	// key for byKey) in the same order. All three are queues, taken from
	// the front as flushes cover batches, and kept as values so that a
	// batch allocates nothing here.
	batches  queue[idemBatch]
	hashes   queue[uint64]
	keys     queue[string]
	nApplied int // the batches at the front that are applied
	// arena holds the keys of the records in byHash in the order written,
	// in chunks of arenaChunk bytes; a key does not straddle two. Offsets
	// count from the arena's start ever: arena[0] starts at
	// first*arenaChunk. free keeps chunks for reuse.
	arena [][]byte
	first uint64
	free  [][]byte
}

// arenaChunk is the size of the arena's chunks; a longer key goes to byKey.
const arenaChunk = 1 << 20

// maxFreeChunks bounds the chunks kept for reuse. A flush frees the keys
// of a whole memtable at once, some 6 MiB in the pairs benchmark: with 4
// kept, the rest were allocated again (2% of what the server allocated).
const maxFreeChunks = 8

// idemBatch is the idempotency records of batch gen: nh in byHash, whose
// keys end before arena offset end, and nk in byKey. Once applied, last is
// the seqnum of its last write.
type idemBatch struct {
	gen, last, end uint64
	nh, nk         int
}

func newIdemIndex() *idemIndex {
	seed := maphash.MakeSeed()
	return &idemIndex{
		hash:   func(key []byte) uint64 { return maphash.Bytes(seed, key) },
		byHash: make(map[uint64]idemRec),
		byKey:  make(map[string]idemRec),
	}
}

// add indexes the record of key, whose hash is h (x.hash), written by
// batch gen. The caller has looked key up and found nothing.
func (x *idemIndex) add(key []byte, h uint64, r idemRec) {
	b := x.batches.last()
	if b == nil || b.gen != r.gen {
		b = x.batches.push(idemBatch{gen: r.gen})
	}
	if _, taken := x.byHash[h]; taken || len(key) > arenaChunk {
		k := string(key)
		x.byKey[k] = r
		x.keys.push(k)
		b.nk++
		return
	}
	n := len(x.arena)
	if n == 0 || len(x.arena[n-1])+len(key) > arenaChunk {
		c := make([]byte, 0, arenaChunk)
		if k := len(x.free); k > 0 {
			c, x.free = x.free[k-1][:0], x.free[:k-1]
		}
		x.arena = append(x.arena, c)
		n++
	}
	last := &x.arena[n-1]
	r.at, r.n = (x.first+uint64(n-1))*arenaChunk+uint64(len(*last)), len(key)
	*last = append(*last, key...)
	x.byHash[h] = r
	x.hashes.push(h)
	b.nh++
	b.end = r.at + uint64(r.n)
}

// get returns the indexed record of key, whose hash is h, if any.
func (x *idemIndex) get(key []byte, h uint64) (idemRec, bool) {
	if r, ok := x.byHash[h]; ok {
		c, at := x.arena[r.at/arenaChunk-x.first], r.at%arenaChunk
		if bytes.Equal(c[at:at+uint64(r.n)], key) {
			return r, true
		}
	}
	if len(x.byKey) > 0 {
		r, ok := x.byKey[string(key)]
		return r, ok
	}
	return idemRec{}, false
}

// applied notes that batch gen is applied with last as its last seqnum:
// its records now wait for a flush. Batches are applied in order, so gen
// is the first batch here not yet applied, or has no records.
func (x *idemIndex) applied(gen, last uint64) {
	if x.nApplied < x.batches.len() {
		if b := x.batches.at(x.nApplied); b.gen == gen {
			b.last = last
			x.nApplied++
		}
	}
}

// dropFlushed drops the records that a flush up to seqnum flushed has put
// in sstables.
func (x *idemIndex) dropFlushed(flushed uint64) {
	var front uint64
	dropped := false
	for x.batches.len() > 0 {
		b := x.batches.at(0)
		if x.nApplied == 0 || b.last > flushed {
			break
		}
		for range b.nh {
			h := x.hashes.pop()
			if r, ok := x.byHash[h]; ok && r.gen == b.gen {
				delete(x.byHash, h)
			}
		}
		for range b.nk {
			k := x.keys.pop()
			if r, ok := x.byKey[k]; ok && r.gen == b.gen {
				delete(x.byKey, k)
			}
		}
		front = max(front, b.end)
		x.batches.pop()
		x.nApplied--
		dropped = true
	}
	if !dropped {
		return
	}
	// The keys of the dropped batches are at the arena's front, before
	// the last one's end: a batch with a record in byHash has end set.
	// The chunks before it go, but the one being filled.
	for len(x.arena) > 1 && front >= x.first*arenaChunk+uint64(len(x.arena[0])) {
		if len(x.free) < maxFreeChunks {
			x.free = append(x.free, x.arena[0])
		}
		x.arena[0] = nil
		x.arena = x.arena[1:]
		x.first++
	}
}

// queue is a first-in, first-out list on a slice: pop moves a head, and
// push moves what is left to the front when the slice is full, so that the
// slice grows only with what the queue holds.
type queue[T any] struct {
	s    []T
	head int
}

func (q *queue[T]) len() int { return len(q.s) - q.head }

// at returns the i-th element from the front.
func (q *queue[T]) at(i int) *T { return &q.s[q.head+i] }

// last returns the last element, or nil.
func (q *queue[T]) last() *T {
	if q.len() == 0 {
		return nil
	}
	return &q.s[len(q.s)-1]
}

func (q *queue[T]) push(v T) *T {
	if len(q.s) == cap(q.s) && q.head > 0 {
		n := copy(q.s, q.s[q.head:])
		clear(q.s[n:])
		q.s, q.head = q.s[:n], 0
	}
	q.s = append(q.s, v)
	return &q.s[len(q.s)-1]
}

func (q *queue[T]) pop() T {
	var zero T
	v := q.s[q.head]
	q.s[q.head] = zero
	q.head++
	if q.head == len(q.s) {
		q.s, q.head = q.s[:0], 0
	}
	return v
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

// dropFlushed drops from the index the idempotency records that a flush
// has put in sstables. It runs before a batch's first lookup.
func (w *writer) dropFlushed() {
	w.idem.dropFlushed(w.flushed.seq.Load())
}

// sstIdem reads an idempotency record from the sstables alone: only from
// those older than the records written since the store opened, when those
// cannot hold key, whose hash is h, and from none when there are no older
// records (recent.go).
func (w *writer) sstIdem(key []byte, h uint64, fn func(v []byte) error) (found bool, err error) {
	it, older := &w.sst, false
	recent := w.recent.mayHold(h)
	if !recent && w.recent.nowhere(h) {
		w.lookups.none++
		return false, nil
	}
	if w.recent.known() && !recent {
		it, older = &w.sstOld, true
		w.lookups.old++
	} else {
		w.lookups.all++
	}
	if *it == nil {
		opts := pebble.IterOptions{
			LowerBound:                []byte{pIdem},
			UpperBound:                []byte{pIdem + 1},
			OnlyReadGuaranteedDurable: true, // the sstables alone
			UseL6Filters:              true, // most lookups find nothing
		}
		if older {
			opts.TableFilter = olderThan(w.recent.covered)
		}
		if *it, err = w.db.NewIter(&opts); err != nil {
			return false, err
		}
	}
	if (*it).SeekPrefixGE(key) && bytes.Equal((*it).Key(), key) {
		return true, fn((*it).Value())
	}
	return false, (*it).Error()
}

// endLookups closes the batch's sstable iterators: they hold their
// sstables.
func (w *writer) endLookups() {
	for _, it := range []**pebble.Iterator{&w.sst, &w.sstOld} {
		if *it != nil {
			(*it).Close()
			*it = nil
		}
	}
}
