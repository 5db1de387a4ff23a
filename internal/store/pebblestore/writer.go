package pebblestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// request states: the writer takes a queued request, or its caller abandons
// it (context done, store closed); whoever swaps first decides.
const (
	queued int32 = iota
	taken
	abandoned
)

// A request is one write call waiting for the writer.
type request struct {
	ctx   context.Context
	state atomic.Int32
	// apply does the request's checks and then its writes on the writer's
	// batch. It must write nothing when it returns an error.
	apply func(w *writer) error
	// err is apply's error, or the commit's; done gets one value once it
	// is set.
	err  error
	done chan struct{}
}

// requests keeps answered requests for reuse: one write call otherwise
// allocates a request and its channel. An abandoned request stays with the
// writer and is not reused.
var requests = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// finish returns r's error and gives r back for reuse; r is answered, and
// nothing else holds it.
func (r *request) finish() error {
	err := r.err
	r.ctx, r.apply, r.err = nil, nil, nil
	requests.Put(r)
	return err
}

// submit queues fn for the writer and waits until its batch is durable.
func (s *Store) submit(ctx context.Context, fn func(w *writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := requests.Get().(*request)
	r.ctx, r.apply = ctx, fn
	r.state.Store(queued)
	select {
	case s.reqs <- r:
	case <-s.quit:
		r.finish()
		return fmt.Errorf("pebblestore: %w", store.ErrClosed)
	case <-ctx.Done():
		r.finish()
		return ctx.Err()
	}
	select {
	case <-r.done:
		return r.finish()
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
	case <-s.stopped:
		// The writer may have exited before it saw r.
		if r.state.CompareAndSwap(queued, abandoned) {
			return fmt.Errorf("pebblestore: %w", store.ErrClosed)
		}
	}
	// The writer took r before we could abandon it: its outcome stands.
	<-r.done
	return r.finish()
}

// answer answers r, once: the writer does not touch r afterwards.
func (r *request) answer(err error) {
	r.err = err
	r.done <- struct{}{}
}

// writer is the state of the writer goroutine. Only that goroutine touches
// it.
type writer struct {
	db         *pebble.DB
	b          sortedBatch // the writes of the batch being built
	gen        uint64      // the number of the batch being built
	maxBatch   int
	maxBytes   int
	cacheLimit int

	// convs and streams hold conversations by id and the state of users'
	// streams, as of the batch being built. An entry written by a batch
	// that is not yet applied must stay (the DB does not have it yet), so
	// they are trimmed only when every built batch is applied.
	convs   map[string]*chat.Conversation
	streams map[chat.Address]*stream

	// pending holds the keys that the writer reads back (apps, read
	// positions) as written by batches not yet applied to the
	// DB, the one being built included. keysOf lists each batch's keys, so
	// that they are dropped once the batch is applied. Idempotency records
	// have an index of their own until they are flushed (see idem.go).
	pending map[string]pendingValue
	keysOf  map[uint64][]string
	// unapplied holds the messages of the batches not yet applied, in
	// batch order, for a repeat of one of them (repeat): a slice append
	// per message, where a pending key costs a copy and two map writes.
	unapplied []batchMessages
	spareMsgs [][]chat.Message // the slices of applied batches, for reuse
	idem      *idemIndex
	flushed   *flushWatch
	// sst reads the sstables' idempotency records during a batch, sstOld
	// only those older than recent covers (recent.go).
	sst, sstOld *pebble.Iterator
	recent      *recentIdem
	openedc     <-chan []*bloomSet           // scanOpened's filters, until taken
	lookups     struct{ all, old, none int } // idempotency lookups of each kind, for tests
	// applied is the number of the last batch applied to the DB.
	applied uint64

	// moved holds the conversations that got messages in the batch being
	// built, with their UpdatedAt before it: their heads and list entries
	// are written once, when the batch ends (flushConv), and not once per
	// message, which for a busy group of 256 is most of the work.
	moved map[string]int64

	// The streams and conversations the batch being built appends to, with
	// the first cursor or seq it gives them: see durableGate. touched also
	// lists the streams whose message runs are written when the batch ends.
	touched     []*stream
	newMessages map[string]int64

	// Scratch buffers for keys and values. Batch.Set copies its arguments.
	kbuf, kbuf2, vbuf []byte
	rkbuf, rvbuf      []byte // for the runs alone (writeRun)
}

// stream is the writer's state of one user's stream.
type stream struct {
	user chat.Address
	last int64 // the last cursor given, as of the batch being built
	// gen is the last batch that appended to the stream. In that batch,
	// first is the first cursor it gave (see durableGate), and run holds
	// the message entries that follow the last entry written.
	gen   uint64
	first int64
	run   messageRun
}

// messageRun is n message entries of one stream with consecutive cursors,
// from cursor on, for consecutive seqs of one conversation, from seq on: one
// key instead of n (doc.go). In a conversation of two, a batch of 16 sends
// gives each member one run of 16.
type messageRun struct {
	conv        string
	seq, cursor int64
	n           int
}

// maxRun bounds the entries of one run, so that a value stays small and a
// read that starts inside a run skips few entries.
const maxRun = 1024

type batchMessages struct {
	gen  uint64
	msgs []chat.Message
}

type pendingValue struct {
	v       []byte
	deleted bool
	gen     uint64
}

// A built batch travels from the writer to the applier, which applies it
// to the DB (its writes are then visible, not yet durable), and on to the
// syncer, which waits for the WAL sync and answers its requests. The writer
// so builds the next batch while the last one is applied and synced.
type built struct {
	gen  uint64
	b    *pebble.Batch
	reqs []*request
	err  error // set by the applier when the apply failed
	// The streams and conversations the batch appends to.
	users []chat.Address
	convs []string
}

// durableGate keeps readers from what is applied but not yet durable.
// Pebble makes a batch visible before its WAL sync ends; a reader who saw
// an entry that a crash then lost could see its cursor (or seq) again with
// other content. So, for each stream and conversation with entries not yet
// synced, the gate holds the first such cursor or seq, and reads stop
// before it. The writer adds marks before a batch is applied; the syncer
// removes them once it is durable (never, if the sync fails).
type durableGate struct {
	mu      sync.Mutex
	streams map[chat.Address][]gateMark
	convs   map[string][]gateMark
}

// gateMark is the first entry that batch gen gave a stream (or
// conversation). A stream's marks are in batch order, and batches become
// durable in that order, so the first mark is the first entry not yet
// durable.
type gateMark struct {
	gen   uint64
	first int64
}

func newDurableGate() *durableGate {
	return &durableGate{streams: make(map[chat.Address][]gateMark), convs: make(map[string][]gateMark)}
}

func (g *durableGate) add(gen uint64, streams []*stream, convs map[string]int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range streams {
		g.streams[st.user] = append(g.streams[st.user], gateMark{gen, st.first})
	}
	for c, first := range convs {
		g.convs[c] = append(g.convs[c], gateMark{gen, first})
	}
}

// durable drops the marks of batch b, now synced.
func (g *durableGate) durable(b *built) {
	if len(b.users) == 0 && len(b.convs) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range b.users {
		if marks := dropMark(g.streams[u], b.gen); len(marks) > 0 {
			g.streams[u] = marks
		} else {
			delete(g.streams, u)
		}
	}
	for _, c := range b.convs {
		if marks := dropMark(g.convs[c], b.gen); len(marks) > 0 {
			g.convs[c] = marks
		} else {
			delete(g.convs, c)
		}
	}
}

func dropMark(marks []gateMark, gen uint64) []gateMark {
	if len(marks) > 0 && marks[0].gen == gen {
		return marks[1:]
	}
	return marks
}

// stream returns the first cursor of user's stream that readers may not
// see yet, or 0.
func (g *durableGate) stream(user chat.Address) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if marks := g.streams[user]; len(marks) > 0 {
		return marks[0].first
	}
	return 0
}

// conversation returns the first seq of conv that readers may not see yet,
// or 0.
func (g *durableGate) conversation(conv string) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if marks := g.convs[conv]; len(marks) > 0 {
		return marks[0].first
	}
	return 0
}

func (s *Store) run(w *writer) {
	applyq := make(chan *built, 1)
	syncq := make(chan *built, 4)
	appliedq := make(chan appliedBatch, 64)
	// The syncer hands answered batches back for the next ones, so that
	// a batch costs no allocations of its own.
	spare := make(chan *built, 8)
	var pipeline sync.WaitGroup
	pipeline.Go(func() { s.applier(applyq, syncq, appliedq) })
	pipeline.Go(func() { s.syncer(syncq, spare) })
	defer func() {
		close(applyq)
		pipeline.Wait()
		close(s.stopped)
	}()
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case a := <-appliedq:
			w.forget(a)
			continue
		case <-s.quit:
			w.failQueued(s.reqs)
			return
		}
		w.forgetApplied(appliedq)
		w.dropFlushed()
		if w.openedc != nil {
			select {
			case sets := <-w.openedc:
				w.recent.setOpened(sets)
				w.openedc = nil
			default:
			}
		}
		w.gen++
		var b *built
		select {
		case b = <-spare:
		default:
			b = &built{reqs: make([]*request, 0, 16)}
		}
		batch := b.reqs[:0]
		if w.applyOne(first) {
			batch = append(batch, first)
		}
	drain:
		for len(batch) < w.maxBatch && w.b.size() < w.maxBytes {
			select {
			case r := <-s.reqs:
				if w.applyOne(r) {
					batch = append(batch, r)
				}
			default:
				break drain
			}
		}
		// Even a batch that wrote nothing goes down the pipeline: its
		// answers (failures, repeats) may rest on earlier batches, and the
		// syncer answers in order.
		w.endLookups()
		for id := range w.moved {
			w.flushConv(id)
		}
		for _, st := range w.touched {
			w.writeRun(st)
		}
		b.gen, b.b, b.reqs, b.err = w.gen, w.b.build(w.db), batch, nil
		b.users, b.convs = b.users[:0], b.convs[:0]
		if len(w.touched) > 0 || len(w.newMessages) > 0 {
			s.gate.add(b.gen, w.touched, w.newMessages)
			for _, st := range w.touched {
				b.users = append(b.users, st.user)
			}
			for c := range w.newMessages {
				b.convs = append(b.convs, c)
			}
			clear(w.touched)
			w.touched = w.touched[:0]
			clear(w.newMessages)
		}
		applyq <- b
		w.trimCache(appliedq)
	}
}

// applier applies each batch to the DB in order, and tells the writer.
func (s *Store) applier(in <-chan *built, out chan<- *built, applied chan<- appliedBatch) {
	defer close(out)
	var broken error
	for b := range in {
		switch {
		case broken != nil:
			b.err = broken
		case !b.b.Empty():
			// The WAL is written and the memtable updated now; the
			// sync is waited for by the syncer.
			if err := s.db.ApplyNoSyncWait(b.b, pebble.Sync); err != nil {
				broken = fmt.Errorf("pebblestore: commit: %w: %w", store.ErrUnavailable, err)
				b.err = broken
			}
		}
		a := appliedBatch{gen: b.gen}
		if b.err == nil && !b.b.Empty() {
			a.first = b.b.SeqNum()
			a.last = a.first + uint64(b.b.Count()) - 1
		}
		applied <- a
		out <- b
	}
}

// syncer waits until each batch is durable and answers its requests; it
// then hands the batch to spare for reuse, when spare has room.
func (s *Store) syncer(in <-chan *built, spare chan<- *built) {
	var broken error
	for b := range in {
		err := b.err
		if err == nil && broken == nil && !b.b.Empty() {
			if e := b.b.SyncWait(); e != nil {
				err = fmt.Errorf("pebblestore: sync: %w: %w", store.ErrUnavailable, e)
			}
		}
		if err != nil && broken == nil {
			// Later batches were built on this one: none may succeed.
			broken = err
		}
		if broken != nil {
			err = broken
		} else {
			s.gate.durable(b)
		}
		b.b.Close()
		for _, r := range b.reqs {
			if err != nil {
				r.err = err
			}
			r.answer(r.err)
		}
		clear(b.reqs) // the requests go with their callers
		b.b = nil
		select {
		case spare <- b:
		default:
		}
	}
}

// applyOne applies r to the batch unless its caller has left, and reports
// whether r waits for the commit. A request whose checks failed waits too
// (with its error set, having written nothing): its answer may rest on
// earlier writes, which are not durable yet.
func (w *writer) applyOne(r *request) bool {
	if !r.state.CompareAndSwap(queued, taken) {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.answer(err)
		return false
	}
	r.err = r.apply(w)
	return true
}

func (w *writer) failQueued(reqs chan *request) {
	for {
		select {
		case r := <-reqs:
			if r.state.CompareAndSwap(queued, taken) {
				r.answer(fmt.Errorf("pebblestore: %w", store.ErrClosed))
			}
		default:
			return
		}
	}
}

// forget drops the pending keys of batch a, now applied: the DB has them.
// Its idempotency records stay indexed until flushed (see idem.go).
func (w *writer) forget(a appliedBatch) {
	for _, k := range w.keysOf[a.gen] {
		if p, ok := w.pending[k]; ok && p.gen == a.gen {
			delete(w.pending, k)
		}
	}
	delete(w.keysOf, a.gen)
	for len(w.unapplied) > 0 && w.unapplied[0].gen <= a.gen {
		clear(w.unapplied[0].msgs) // the messages may go
		if len(w.spareMsgs) < 8 {
			w.spareMsgs = append(w.spareMsgs, w.unapplied[0].msgs[:0])
		}
		w.unapplied = w.unapplied[1:]
	}
	w.idem.applied(a.gen, a.last)
	w.recent.applied(a)
	w.applied = a.gen
}

func (w *writer) forgetApplied(appliedq <-chan appliedBatch) {
	for {
		select {
		case a := <-appliedq:
			w.forget(a)
		default:
			return
		}
	}
}

// trimCache bounds the cache. Dropping it all is crude but cheap, and a
// miss costs only a read. It may drop only what the DB has, so past twice
// the limit it waits for the batches in flight to be applied.
func (w *writer) trimCache(appliedq <-chan appliedBatch) {
	if len(w.convs) <= w.cacheLimit && len(w.streams) <= w.cacheLimit {
		return
	}
	if w.applied != w.gen {
		if len(w.convs) <= 2*w.cacheLimit && len(w.streams) <= 2*w.cacheLimit {
			return
		}
		for w.applied != w.gen {
			w.forget(<-appliedq)
		}
	}
	if len(w.convs) > w.cacheLimit {
		w.convs = make(map[string]*chat.Conversation)
	}
	if len(w.streams) > w.cacheLimit {
		w.streams = make(map[chat.Address]*stream)
	}
}

// get reads key as of the batch being built; found is false when it does
// not exist. Only keys that set records in pending may be read this way.
func (w *writer) get(key []byte, fn func(v []byte) error) (found bool, err error) {
	if p, ok := w.pending[string(key)]; ok {
		if p.deleted {
			return false, nil
		}
		return true, fn(p.v)
	}
	return get(w.db, key, fn)
}

// set writes key in the batch; keys that the writer reads back are also
// recorded in pending.
func (w *writer) set(key, value []byte) {
	w.b.set(key, value)
	w.remember(key, value, false)
}

func (w *writer) del(key []byte) {
	w.b.del(key)
	w.remember(key, nil, true)
}

func (w *writer) remember(key, value []byte, deleted bool) {
	switch key[0] {
	case pApp, pRead:
	default:
		return
	}
	k := string(key)
	w.pending[k] = pendingValue{v: append([]byte(nil), value...), deleted: deleted, gen: w.gen}
	w.keysOf[w.gen] = append(w.keysOf[w.gen], k)
}

// conversation returns the cached conversation, loading it on a miss; nil
// when it does not exist. The caller must not change it in place.
func (w *writer) conversation(id string) (*chat.Conversation, error) {
	if c, ok := w.convs[id]; ok {
		return c, nil
	}
	var c *chat.Conversation
	w.kbuf = convKey(w.kbuf[:0], id)
	found, err := w.get(w.kbuf, func(v []byte) (err error) {
		c, err = decodeConversation(v)
		return err
	})
	if err != nil || !found {
		return nil, err
	}
	// The DB has every message of a conversation that is not cached: see
	// trimCache.
	w.kbuf = messagePrefix(w.kbuf[:0], id)
	if _, err := last(w.db, w.kbuf, func(k, v []byte) error {
		return withLastMessage(c, k, len(w.kbuf), v)
	}); err != nil {
		return nil, fmt.Errorf("pebblestore: conversation %s: %w", id, err)
	}
	w.convs[id] = c
	return c, nil
}

// putConversation stores c whole, with its LastSeq and UpdatedAt (appends
// after this one override them: see withLastMessage).
func (w *writer) putConversation(c *chat.Conversation) {
	w.kbuf = convKey(w.kbuf[:0], c.ID)
	w.vbuf = encodeConversation(w.vbuf[:0], c)
	w.set(w.kbuf, w.vbuf)
	w.convs[c.ID] = c
}

// loadStream caches the state of user's stream, reading its last cursor.
func (w *writer) loadStream(user chat.Address) error {
	if _, ok := w.streams[user]; ok {
		return nil
	}
	prefix := updatePrefix(nil, user)
	// The DB has every stream entry of a user who is not cached: see
	// trimCache.
	it, err := w.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	var last int64
	if it.Last() {
		n := 0
		k := it.Key()
		if len(k) != len(prefix)+8 {
			err = fmt.Errorf("pebblestore: malformed stream key %q", k)
		} else if n, err = entryCount(it.Value()); err != nil {
			err = fmt.Errorf("pebblestore: stream entry %q: %w", k, err)
		} else {
			last = int64(be.Uint64(k[len(prefix):])) + int64(n) - 1
		}
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	w.streams[user] = &stream{user: user, last: last}
	return nil
}

// loadCursors makes sure the streams of users are cached, so that the
// writes that follow cannot fail halfway.
func (w *writer) loadCursors(users []chat.Address) error {
	for _, u := range users {
		if err := w.loadStream(u); err != nil {
			return err
		}
	}
	return nil
}

// next gives the next cursor of st in the batch being built.
func (w *writer) next(st *stream) int64 {
	if st.gen != w.gen {
		st.gen, st.first, st.run.n = w.gen, st.last+1, 0
		w.touched = append(w.touched, st)
	}
	st.last++
	return st.last
}

// appendEntry appends the entry value to user's stream and returns its
// cursor. The user's stream must be cached (loadCursors).
func (w *writer) appendEntry(user chat.Address, value []byte) int64 {
	st := w.streams[user]
	w.writeRun(st)
	c := w.next(st)
	w.kbuf2 = updateKey(w.kbuf2[:0], user, c)
	w.b.set(w.kbuf2, value)
	return c
}

// appendMessageEntry appends to user's stream the entry of message seq of
// conv and returns its cursor. The entry joins the stream's run when it
// follows it; runs are written when something else is appended to the
// stream, or when the batch ends.
func (w *writer) appendMessageEntry(user chat.Address, conv string, seq int64) int64 {
	st := w.streams[user]
	c := w.next(st)
	// A run in progress ends at the stream's last cursor: appendEntry
	// writes it before it appends.
	if r := &st.run; r.n > 0 && r.n < maxRun && r.seq+int64(r.n) == seq && r.conv == conv {
		r.n++
		return c
	}
	w.writeRun(st)
	st.run = messageRun{conv: conv, seq: seq, cursor: c, n: 1}
	return c
}

// writeRun writes st's run, if any, to the batch.
func (w *writer) writeRun(st *stream) {
	r := &st.run
	if r.n == 0 {
		return
	}
	w.rkbuf = updateKey(w.rkbuf[:0], st.user, r.cursor)
	w.rvbuf = encodeMessageRun(w.rvbuf[:0], r.conv, r.seq, r.n)
	w.b.set(w.rkbuf, w.rvbuf)
	r.n = 0
}

// flushConv moves the list entries of the members of conversation id, if
// messages of the batch changed them.
func (w *writer) flushConv(id string) {
	from, ok := w.moved[id]
	if !ok {
		return
	}
	delete(w.moved, id)
	// Cached: touched in this batch, and the cache is trimmed only between
	// batches.
	c := w.convs[id]
	to := nanos(c.UpdatedAt)
	for _, m := range c.Members {
		w.moveListEntry(m, id, from, to, true)
	}
}

// moveListEntry moves conv in user's list from time from to time to; had
// false means user has no entry yet (from is then ignored).
func (w *writer) moveListEntry(user chat.Address, conv string, from, to int64, had bool) {
	if had {
		if from == to {
			return
		}
		w.kbuf2 = listKey(w.kbuf2[:0], user, from, conv)
		w.del(w.kbuf2)
	}
	w.kbuf2 = listKey(w.kbuf2[:0], user, to, conv)
	w.set(w.kbuf2, nil)
}

func (w *writer) createApp(app chat.App) error {
	w.kbuf = appKey(w.kbuf[:0], app.ID)
	found, err := w.get(w.kbuf, func([]byte) error { return nil })
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("pebblestore: app %s: %w", app.ID, store.ErrConflict)
	}
	v, err := json.Marshal(app)
	if err != nil {
		return err
	}
	w.set(w.kbuf, v)
	return nil
}

func (w *writer) updateApp(id string, fn func(*chat.App) error) (chat.App, error) {
	var app chat.App
	w.kbuf = appKey(w.kbuf[:0], id)
	found, err := w.get(w.kbuf, func(v []byte) error { return json.Unmarshal(v, &app) })
	if err != nil {
		return chat.App{}, err
	}
	if !found {
		return chat.App{}, fmt.Errorf("pebblestore: app %s: %w", id, store.ErrNotFound)
	}
	if err := callSafely(func() error { return fn(&app) }); err != nil {
		return chat.App{}, err
	}
	app.ID = id
	app.CreatedAt = normTime(app.CreatedAt)
	v, err := json.Marshal(app)
	if err != nil {
		return chat.App{}, err
	}
	w.kbuf = appKey(w.kbuf[:0], id)
	w.set(w.kbuf, v)
	return app, nil
}

// callSafely runs a caller's function in the writer goroutine; a panic in
// it fails that request instead of the process.
func callSafely(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("pebblestore: update function panicked: %v", p)
		}
	}()
	return fn()
}

func (w *writer) createConversation(c chat.Conversation) (chat.Conversation, []chat.Delivery, bool, error) {
	old, err := w.conversation(c.ID)
	if err != nil {
		return chat.Conversation{}, nil, false, err
	}
	if old != nil {
		return cloneConversation(old), nil, false, nil
	}
	if err := w.loadCursors(c.Members); err != nil {
		return chat.Conversation{}, nil, false, err
	}
	c.Members = append([]chat.Address(nil), c.Members...)
	c.CreatedAt = normTime(c.CreatedAt)
	c.LastSeq, c.UpdatedAt = 0, c.CreatedAt
	entry := conversationEntry(&c)
	stored := c
	w.putConversation(&stored)
	at := nanos(c.UpdatedAt)
	deliveries := make([]chat.Delivery, len(c.Members))
	for i, m := range c.Members {
		deliveries[i] = chat.Delivery{User: m, Cursor: w.appendEntry(m, entry)}
		w.moveListEntry(m, c.ID, 0, at, false)
	}
	return cloneConversation(&c), deliveries, true, nil
}

func conversationEntry(c *chat.Conversation) []byte {
	return encodeConversation([]byte{entryConversation}, c)
}

func cloneConversation(c *chat.Conversation) chat.Conversation {
	out := *c
	out.Members = append([]chat.Address(nil), c.Members...)
	return out
}

func (w *writer) updateMembers(id string, now int64, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	old, err := w.conversation(id)
	if err != nil {
		return chat.Conversation{}, nil, err
	}
	if old == nil {
		return chat.Conversation{}, nil, fmt.Errorf("pebblestore: conversation %s: %w", id, store.ErrNotFound)
	}
	// Messages earlier in the batch may have moved the list entries of
	// the members: write that first, so that from below is where they are.
	w.flushConv(id)
	from := nanos(old.UpdatedAt)
	draft := cloneConversation(old)
	if err := callSafely(func() error { return fn(&draft) }); err != nil {
		return chat.Conversation{}, nil, err
	}
	if equalMembers(old.Members, draft.Members) {
		return cloneConversation(old), nil, nil
	}
	c := cloneConversation(old)
	c.Members = append([]chat.Address(nil), draft.Members...)
	c.UpdatedAt = fromNanos(now)

	// Every member before and after hears of it, each once.
	audience := append([]chat.Address(nil), old.Members...)
	for _, m := range c.Members {
		if !old.HasMember(m) {
			audience = append(audience, m)
		}
	}
	if err := w.loadCursors(audience); err != nil {
		return chat.Conversation{}, nil, err
	}
	entry := conversationEntry(&c)
	stored := cloneConversation(&c)
	w.putConversation(&stored)
	deliveries := make([]chat.Delivery, len(audience))
	for i, m := range audience {
		deliveries[i] = chat.Delivery{User: m, Cursor: w.appendEntry(m, entry)}
		was, is := old.HasMember(m), c.HasMember(m)
		switch {
		case is:
			w.moveListEntry(m, id, from, now, was)
			if !was {
				// A member who joins starts at read position 0, also when
				// they were a member before.
				w.kbuf2 = readKey(w.kbuf2[:0], id, m)
				w.del(w.kbuf2)
			}
		case was:
			w.kbuf2 = listKey(w.kbuf2[:0], m, from, id)
			w.del(w.kbuf2)
		}
	}
	return c, deliveries, nil
}

func equalMembers(a, b []chat.Address) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (w *writer) appendMessage(m chat.Message) (store.Appended, error) {
	c, err := w.conversation(m.ConversationID)
	if err != nil {
		return store.Appended{}, err
	}
	if c == nil {
		return store.Appended{}, fmt.Errorf("pebblestore: conversation %s: %w", m.ConversationID, store.ErrNotFound)
	}
	// A repeat answers the first result, even if the sender has left since.
	if first, found, err := w.repeat(&m); err != nil || found {
		return first, err
	}
	if !c.HasMember(m.Sender) {
		return store.Appended{}, fmt.Errorf("pebblestore: %s in conversation %s: %w", m.Sender, m.ConversationID, store.ErrNotFound)
	}
	if err := w.loadCursors(c.Members); err != nil {
		return store.Appended{}, err
	}
	return w.put(c, m, true), nil
}

// appendMessages appends ms, of one sender to one conversation, in order.
// Everything that reads (and so may fail) is done before the first write,
// so that an error leaves the batch untouched.
func (w *writer) appendMessages(ms []chat.Message) ([]store.Appended, error) {
	if err := store.CheckBatch(ms); err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	first := ms[0]
	c, err := w.conversation(first.ConversationID)
	if err != nil {
		return nil, err
	}
	if c == nil || !c.HasMember(first.Sender) {
		return nil, fmt.Errorf("pebblestore: %s in conversation %s: %w", first.Sender, first.ConversationID, store.ErrNotFound)
	}
	if err := w.loadCursors(c.Members); err != nil {
		return nil, err
	}
	// firstOf[i] is the first message of ms with ms[i]'s client id that
	// no earlier append stored, or -1 when an earlier append stored it.
	res := make([]store.Appended, len(ms))
	firstOf := make([]int, len(ms))
	for i := range ms {
		r, found, err := w.repeat(&ms[i])
		if err != nil {
			return nil, err
		}
		res[i], firstOf[i] = r, i
		if found {
			firstOf[i] = -1
		}
	}
	// From here on nothing fails. A client id given twice in ms is a
	// repeat of the first: found by comparing, as a batch holds a few
	// dozen sends at most. Only the last new message moves the sender's
	// read position: one write instead of one per message.
	last := -1
	for i := range ms {
		if firstOf[i] < 0 {
			continue
		}
		for j := range i {
			if firstOf[j] == j && ms[j].ClientID == ms[i].ClientID {
				firstOf[i] = j
				break
			}
		}
		if firstOf[i] == i {
			last = i
		}
	}
	for i, m := range ms {
		switch j := firstOf[i]; {
		case j < 0:
		case j != i:
			res[i] = store.Appended{Message: res[j].Message, Cursor: res[j].Cursor}
		default:
			res[i] = w.put(c, m, i == last)
		}
	}
	return res, nil
}

// repeat looks up an earlier append of m's client id and answers its first
// result. It only reads.
func (w *writer) repeat(m *chat.Message) (store.Appended, bool, error) {
	w.kbuf = idemKey(w.kbuf[:0], m.ConversationID, m.Sender, m.ClientID)
	h := w.idem.hash(w.kbuf)
	r, found := w.idem.get(w.kbuf, h)
	seq, cursor := r.seq, r.cursor
	if !found {
		var err error
		found, err = w.sstIdem(w.kbuf, h, func(v []byte) error {
			if len(v) != 16 && len(v) != 24 { // 24: with its seqnum's lower bound (recent.go)
				return errors.New("pebblestore: malformed idempotency record")
			}
			seq, cursor = int64(be.Uint64(v)), int64(be.Uint64(v[8:]))
			return nil
		})
		if err != nil || !found {
			return store.Appended{}, false, err
		}
	}
	if found && r.gen > w.applied {
		if first, ok := w.unappliedMessage(r.gen, m.ConversationID, seq); ok {
			return store.Appended{Message: first, Cursor: cursor}, true, nil
		}
	}
	w.kbuf = messageKey(w.kbuf[:0], m.ConversationID, seq)
	var first chat.Message
	found, err := get(w.db, w.kbuf, func(v []byte) error {
		var err error
		first, err = decodeMessage(v, m.ConversationID, seq)
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("pebblestore: message %s/%d is missing", m.ConversationID, seq)
	}
	if err != nil {
		return store.Appended{}, false, err
	}
	return store.Appended{Message: first, Cursor: cursor}, true, nil
}

// put appends m, a new message of a member, to c: the checks are done and
// the members' cursors loaded, so it cannot fail. The sender's read position
// moves to m unless setRead is false (a later put of the batch moves it).
func (w *writer) put(c *chat.Conversation, m chat.Message, setRead bool) store.Appended {
	var cursor int64
	m.Seq = c.LastSeq + 1
	if _, ok := w.newMessages[m.ConversationID]; !ok {
		w.newMessages[m.ConversationID] = m.Seq
	}
	m.SentAt = normTime(m.SentAt)
	w.kbuf = messageKey(w.kbuf[:0], m.ConversationID, m.Seq)
	w.vbuf = encodeMessage(w.vbuf[:0], &m)
	w.set(w.kbuf, w.vbuf)

	deliveries := make([]chat.Delivery, len(c.Members))
	for i, member := range c.Members {
		cur := w.appendMessageEntry(member, m.ConversationID, m.Seq)
		deliveries[i] = chat.Delivery{User: member, Cursor: cur}
		if member == m.Sender {
			cursor = cur
		}
	}

	w.kbuf = idemKey(w.kbuf[:0], m.ConversationID, m.Sender, m.ClientID)
	w.vbuf = be.AppendUint64(be.AppendUint64(w.vbuf[:0], uint64(m.Seq)), uint64(cursor))
	w.vbuf = be.AppendUint64(w.vbuf, w.recent.floor)
	w.b.set(w.kbuf, w.vbuf)
	h := w.idem.hash(w.kbuf)
	w.idem.add(w.kbuf, h, idemRec{seq: m.Seq, cursor: cursor, gen: w.gen})
	w.recent.add(h, w.gen)

	if setRead {
		w.kbuf = readKey(w.kbuf[:0], m.ConversationID, m.Sender)
		w.vbuf = be.AppendUint64(w.vbuf[:0], uint64(m.Seq))
		w.set(w.kbuf, w.vbuf)
	}

	// The cached conversation is shared with earlier answers of this
	// writer only through copies, so it may change in place. Its head and
	// list entries are written when the batch ends.
	if _, ok := w.moved[m.ConversationID]; !ok {
		w.moved[m.ConversationID] = nanos(c.UpdatedAt)
	}
	c.LastSeq, c.UpdatedAt = m.Seq, m.SentAt
	if m.Meta != nil {
		m.Meta = append(json.RawMessage(nil), m.Meta...)
	}
	w.keepMessage(m)
	return store.Appended{Message: m, Cursor: cursor, Deliveries: deliveries, Created: true}
}

// keepMessage keeps m, appended by the batch being built, in unapplied,
// as the DB will return it.
func (w *writer) keepMessage(m chat.Message) {
	if len(m.Meta) == 0 {
		m.Meta = nil
	}
	n := len(w.unapplied)
	if n == 0 || w.unapplied[n-1].gen != w.gen {
		var msgs []chat.Message
		if k := len(w.spareMsgs); k > 0 {
			msgs, w.spareMsgs = w.spareMsgs[k-1], w.spareMsgs[:k-1]
		}
		w.unapplied = append(w.unapplied, batchMessages{gen: w.gen, msgs: msgs})
		n++
	}
	b := &w.unapplied[n-1]
	b.msgs = append(b.msgs, m)
}

// unappliedMessage returns message seq of conv, which batch gen appended
// and which is not applied yet.
func (w *writer) unappliedMessage(gen uint64, conv string, seq int64) (chat.Message, bool) {
	for _, b := range w.unapplied {
		if b.gen != gen {
			continue
		}
		for _, m := range b.msgs {
			if m.Seq == seq && m.ConversationID == conv {
				return m, true
			}
		}
	}
	return chat.Message{}, false
}

// readSeq returns member's read position in conv (0 when none is stored).
func (w *writer) readSeq(conv string, member chat.Address) (int64, error) {
	var seq int64
	w.kbuf = readKey(w.kbuf[:0], conv, member)
	_, err := w.get(w.kbuf, func(v []byte) error {
		if len(v) != 8 {
			return errors.New("pebblestore: malformed read position")
		}
		seq = int64(be.Uint64(v))
		return nil
	})
	return seq, err
}

func (w *writer) markRead(conv string, reader chat.Address, seq int64) (int64, []chat.Delivery, error) {
	c, err := w.conversation(conv)
	if err != nil {
		return 0, nil, err
	}
	if c == nil || !c.HasMember(reader) {
		return 0, nil, fmt.Errorf("pebblestore: %s in conversation %s: %w", reader, conv, store.ErrNotFound)
	}
	cur, err := w.readSeq(conv, reader)
	if err != nil {
		return 0, nil, err
	}
	if seq <= cur {
		return cur, nil, nil
	}
	if err := w.loadCursors(c.Members); err != nil {
		return 0, nil, err
	}
	w.kbuf = readKey(w.kbuf[:0], conv, reader)
	w.vbuf = be.AppendUint64(w.vbuf[:0], uint64(seq))
	w.set(w.kbuf, w.vbuf)
	w.vbuf = encodeReadEntry(w.vbuf[:0], conv, reader, seq)
	deliveries := make([]chat.Delivery, len(c.Members))
	for i, m := range c.Members {
		deliveries[i] = chat.Delivery{User: m, Cursor: w.appendEntry(m, w.vbuf)}
	}
	return seq, deliveries, nil
}
