package pebblestore

import (
	"errors"
	"strconv"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/sstable"
)

// Idempotency lookups skip the sstables flushed since the store opened.
//
// A client id that the index of unflushed records (idem.go) does not hold
// was looked up in every sstable that might hold it: with up to 16 flushes
// waiting in L0 (store.go), some ten bloom filters through Pebble's
// iterators per send. Skipping those lookups altogether took the pairs
// benchmark from 86,720 to 98,499 delivered/s (docs/benchmarks.md).
//
// The writer writes every idempotency record, so it can also know every
// record written since the store opened, in bloom filters of its own
// (recentIdem): 10 bits and one cache line per record. Each record carries
// a lower bound of its seqnum (the last seqnum applied when it was
// written; records of older versions carry none, which counts as 0), and
// every sstable notes the lowest bound among its records
// (idemSeqCollector). The bound stays in the value through compactions,
// which may zero seqnums in the last level. A key the filters rule out can
// only be in an sstable with a record older than the filters cover: the
// lookup reads only those (olderThan), which are the sstables from before
// the store opened and those that compactions made from them, and skips
// every sstable made of records written since. A key the filters may hold
// (a repeat, or a false positive) is looked up everywhere, as before.
//
// The filters hold recentSetSize records each, recentSets of them at most
// (20 MiB): past that, the oldest goes once its batches are applied, and
// the sstables holding its records are read again. A key is checked
// against every filter, so each filter adds a cache miss and its 1.1% of
// false positives: four filters of 4 Mi records let 4.5% of new keys
// through to the sstables where sixteen of 1 Mi let 18% through, for the
// same memory (docs/benchmarks.md), though the first filter then takes 5
// MiB at a store's first write.
//
// The records a store holds when it opens go, in the background, into
// filters of their own (scanOpened), unless there are more than the
// recent ones' budget. Once they are in (at once in a new store), and
// until the first recent filter goes, the filters hold every record in the
// store (complete): a key they all rule out is in no sstable, and is not
// looked up. Pebble would still visit each level to pass over the
// sstables: in the pairs benchmark that cost 3% of the CPU on a new store,
// and 2 µs a message, 11% of the server's CPU, once it had been restarted
// with 1.4 million records (docs/benchmarks.md).

// The property in which an sstable notes the lowest seqnum bound of its
// idempotency records, in decimal; empty when it holds none. An sstable
// written before the property existed lacks it and is always read.
const idemMinProp = "switchboard.idem.min_seqnum_floor"

// idemSeqCollector collects idemMinProp while an sstable is written.
type idemSeqCollector struct {
	min uint64
	any bool
}

func (c *idemSeqCollector) Add(key sstable.InternalKey, value []byte) error {
	if len(key.UserKey) > 0 && key.UserKey[0] == pIdem {
		var floor uint64 // none: older than anything the filters hold
		if len(value) == 24 && key.Kind() == pebble.InternalKeyKindSet {
			floor = be.Uint64(value[16:])
		}
		if !c.any || floor < c.min {
			c.min, c.any = floor, true
		}
	}
	return nil
}

func (c *idemSeqCollector) Finish(props map[string]string) error {
	props[idemMinProp] = ""
	if c.any {
		props[idemMinProp] = strconv.FormatUint(c.min, 10)
	}
	return nil
}

func (c *idemSeqCollector) Name() string { return "switchboard.idem" }

// olderThan is a table filter that reads only the sstables that may hold
// an idempotency record of seqnum covered or lower: those with a record
// whose bound is that low.
func olderThan(covered uint64) func(props map[string]string) bool {
	return func(props map[string]string) bool {
		v, ok := props[idemMinProp]
		if !ok {
			return true
		}
		if v == "" {
			return false
		}
		min, err := strconv.ParseUint(v, 10, 64)
		return err != nil || min <= covered
	}
}

const (
	recentSetSize = 1 << 22 // records per filter
	recentSets    = 4       // filters kept at most
)

// recentIdem holds bloom filters of the idempotency records written since
// the store opened, by batch: a filter fills up, then the next one starts
// with the next batch.
type recentIdem struct {
	sets          []*bloomSet
	setSize, keep int
	// Once known, every record of seqnum above covered is in sets; until
	// the first batch is applied it is not known, and no sstable is
	// skipped (none is new yet).
	covered uint64
	// floor is the last seqnum applied, a lower bound of the seqnum of
	// any record written now (0 until a batch is applied).
	floor uint64
	// opened holds the records the store held when it opened, once
	// scanOpened has read them all. complete is set while the filters
	// hold every record in the store: opened is in (or the store held
	// none), and no filter of sets has gone since (dropped).
	opened            []*bloomSet
	complete, dropped bool
}

// known reports whether covered is known: whether a batch was applied.
func (r *recentIdem) known() bool { return r.floor > 0 }

// bloomSet is one filter, of the records of batches firstGen to lastGen;
// maxSeq is the highest seqnum those batches took, as far as applied.
type bloomSet struct {
	bits              []uint64
	n                 int
	firstGen, lastGen uint64
	maxSeq            uint64
}

func newRecentIdem(setSize, keep int) *recentIdem {
	return &recentIdem{setSize: setSize, keep: keep}
}

// add notes the record of hash h, written by batch gen.
func (r *recentIdem) add(h, gen uint64) {
	var s *bloomSet
	if len(r.sets) > 0 {
		s = r.sets[len(r.sets)-1]
	}
	// A new filter starts only with a new batch, so that each batch's
	// records are in one filter.
	if s == nil || (s.n >= r.setSize && gen != s.lastGen) {
		s = newBloomSet(r.setSize)
		s.firstGen = gen
		r.sets = append(r.sets, s)
	}
	s.add(h)
	s.lastGen = gen
}

// newBloomSet makes a filter for n records: 10 bits a record, in 512-bit
// blocks.
func newBloomSet(n int) *bloomSet {
	blocks := (n*10 + 511) / 512
	return &bloomSet{bits: make([]uint64, blocks*8)}
}

// mayHold reports whether a record of hash h may have been written since
// the store opened (or since the oldest filter kept).
func (r *recentIdem) mayHold(h uint64) bool { return anyHas(r.sets, h) }

// nowhere reports whether no record of hash h can be in the store, given
// that mayHold(h) is false.
func (r *recentIdem) nowhere(h uint64) bool { return r.complete && !anyHas(r.opened, h) }

func anyHas(sets []*bloomSet, h uint64) bool {
	for _, s := range sets {
		if s.has(h) {
			return true
		}
	}
	return false
}

// setOpened takes the filters of the records the store held when it
// opened (scanOpened). The filters hold every record from then on, unless
// one of sets went meanwhile.
func (r *recentIdem) setOpened(opened []*bloomSet) {
	r.opened = opened
	r.complete = !r.dropped
}

// applied notes that batch a is applied, and drops the oldest filters past
// the budget once all their batches are.
func (r *recentIdem) applied(a appliedBatch) {
	if a.last == 0 {
		return
	}
	if !r.known() {
		r.covered = a.first - 1
	}
	r.floor = a.last
	for i := len(r.sets) - 1; i >= 0; i-- {
		if s := r.sets[i]; a.gen >= s.firstGen {
			if a.gen <= s.lastGen {
				s.maxSeq = max(s.maxSeq, a.last)
			}
			break
		}
	}
	for len(r.sets) > r.keep && a.gen >= r.sets[0].lastGen {
		// Every record above the dropped filter's highest seqnum is in
		// the filters left: batches take seqnums in order.
		r.covered = max(r.covered, r.sets[0].maxSeq)
		r.complete, r.dropped = false, true
		r.sets[0] = nil
		r.sets = r.sets[1:]
	}
}

// The filter's probes: 7 bits within one 512-bit block (one cache line).
const bloomProbes = 7

// add adds the record of hash h, and counts it.
func (s *bloomSet) add(h uint64) {
	block, x, d := s.at(h)
	for range bloomProbes {
		s.bits[block+int(x>>6&7)] |= 1 << (x & 63)
		x += d
	}
	s.n++
}

func (s *bloomSet) has(h uint64) bool {
	block, x, d := s.at(h)
	for range bloomProbes {
		if s.bits[block+int(x>>6&7)]&(1<<(x&63)) == 0 {
			return false
		}
		x += d
	}
	return true
}

// at picks the block from the hash's high half, and the first probe and
// the stride from its low half: a stride drawn from the block's bits would
// be nearly the same for every record of a block, and the filter would let
// through several times more keys it does not hold.
func (s *bloomSet) at(h uint64) (block int, x, d uint32) {
	blocks := uint64(len(s.bits) / 8)
	block = int((h>>32)*blocks>>32) * 8
	return block, uint32(h), uint32(h)>>9 | 1
}

// idemCollectors is Pebble's option that adds idemSeqCollector to every
// sstable it writes.
var idemCollectors = []func() pebble.TablePropertyCollector{
	func() pebble.TablePropertyCollector { return &idemSeqCollector{} },
}

// scanOpened's reasons to give up.
var (
	errTooManyRecords = errors.New("pebblestore: too many idempotency records for filters")
	errScanStopped    = errors.New("pebblestore: the store closed")
)

// scanOpened makes filters of the idempotency records in snap, by their
// hash, setSize records a filter, and reports how many it read. It gives
// up past limit records (errTooManyRecords), or when quit closes
// (errScanStopped).
func scanOpened(snap *pebble.Snapshot, hash func([]byte) uint64, setSize, limit int, quit <-chan struct{}) ([]*bloomSet, int, error) {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{pIdem}, UpperBound: []byte{pIdem + 1}})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var sets []*bloomSet
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n >= limit {
			return nil, n, errTooManyRecords
		}
		if n%(1<<16) == 0 {
			select {
			case <-quit:
				return nil, n, errScanStopped
			default:
			}
		}
		if n%setSize == 0 {
			sets = append(sets, newBloomSet(setSize))
		}
		sets[len(sets)-1].add(hash(it.Key()))
		n++
	}
	return sets, n, it.Error()
}
