package pebblestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// err is apply's error, or the commit's; done is closed once it is set.
	err  error
	done chan struct{}
}

// submit queues fn for the writer and waits until its batch is durable.
func (s *Store) submit(ctx context.Context, fn func(w *writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, apply: fn, done: make(chan struct{})}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return fmt.Errorf("pebblestore: %w", store.ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return r.err
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
	return r.err
}

func (r *request) answer(err error) {
	r.err = err
	close(r.done)
}

// writer is the state of the writer goroutine. Only that goroutine touches
// it.
type writer struct {
	db         *pebble.DB
	b          *pebble.Batch
	maxBatch   int
	maxBytes   int
	cacheLimit int

	// convs and cursors hold what is committed plus what the current batch
	// wrote: conversations by id, and the last cursor of each user's
	// stream. They are dropped when a commit fails.
	convs   map[string]*chat.Conversation
	cursors map[chat.Address]int64

	// Scratch buffers for keys and values. Batch.Set copies its arguments.
	kbuf, kbuf2, vbuf []byte
}

func (s *Store) run(w *writer) {
	defer close(s.stopped)
	batch := make([]*request, 0, w.maxBatch)
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.quit:
			w.failQueued(s.reqs)
			return
		}
		w.b = w.db.NewIndexedBatch()
		batch = batch[:0]
		if w.applyOne(first) {
			batch = append(batch, first)
		}
	drain:
		for len(batch) < w.maxBatch && w.b.Len() < w.maxBytes {
			select {
			case r := <-s.reqs:
				if w.applyOne(r) {
					batch = append(batch, r)
				}
			default:
				break drain
			}
		}
		var err error
		if !w.b.Empty() {
			err = w.b.Commit(pebble.Sync)
		}
		w.b.Close()
		w.b = nil
		if err != nil {
			// The cache may hold this batch's writes, which are lost.
			w.resetCache()
			err = fmt.Errorf("pebblestore: commit: %w: %w", store.ErrUnavailable, err)
		}
		for _, r := range batch {
			if err != nil && r.err == nil {
				r.err = err
			}
			r.answer(r.err)
		}
		clear(batch)
		w.trimCache()
	}
}

// applyOne applies r to the batch unless its caller has left, and reports
// whether r waits for the commit. A request whose checks failed waits too
// (with its error set, having written nothing): its answer may rest on
// earlier writes of the batch, which are not durable yet.
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

func (w *writer) resetCache() {
	w.convs = make(map[string]*chat.Conversation)
	w.cursors = make(map[chat.Address]int64)
}

// trimCache bounds the cache between batches; dropping it all is crude but
// cheap, and a miss costs only a read.
func (w *writer) trimCache() {
	if len(w.convs) > w.cacheLimit {
		w.convs = make(map[string]*chat.Conversation)
	}
	if len(w.cursors) > w.cacheLimit {
		w.cursors = make(map[chat.Address]int64)
	}
}

// get reads key through the batch; found is false when it does not exist.
func (w *writer) get(key []byte, fn func(v []byte) error) (found bool, err error) {
	v, closer, err := w.b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return true, fn(v)
}

func (w *writer) set(key, value []byte) {
	// Set on a batch fails only on a bug (an already committed batch).
	if err := w.b.Set(key, value, nil); err != nil {
		panic(err)
	}
}

func (w *writer) del(key []byte) {
	if err := w.b.Delete(key, nil); err != nil {
		panic(err)
	}
}

// conversation returns the cached conversation, loading it on a miss; nil
// when it does not exist. The caller must not change it in place.
func (w *writer) conversation(id string) (*chat.Conversation, error) {
	if c, ok := w.convs[id]; ok {
		return c, nil
	}
	c := new(chat.Conversation)
	w.kbuf = convKey(w.kbuf[:0], id)
	found, err := w.get(w.kbuf, func(v []byte) error { return json.Unmarshal(v, c) })
	if err != nil || !found {
		return nil, err
	}
	w.kbuf = headKey(w.kbuf[:0], id)
	found, err = w.get(w.kbuf, func(v []byte) error {
		seq, at, err := decodeHead(v)
		c.LastSeq, c.UpdatedAt = seq, fromNanos(at)
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("pebblestore: conversation %s has no head", id)
	}
	if err != nil {
		return nil, err
	}
	w.convs[id] = c
	return c, nil
}

// putConversation stores c whole: its members and its head.
func (w *writer) putConversation(c *chat.Conversation) error {
	stored := *c
	stored.LastSeq, stored.UpdatedAt = 0, stored.CreatedAt
	v, err := json.Marshal(&stored)
	if err != nil {
		return err
	}
	w.kbuf = convKey(w.kbuf[:0], c.ID)
	w.set(w.kbuf, v)
	w.putHead(c)
	w.convs[c.ID] = c
	return nil
}

func (w *writer) putHead(c *chat.Conversation) {
	w.kbuf = headKey(w.kbuf[:0], c.ID)
	w.vbuf = encodeHead(w.vbuf[:0], c.LastSeq, nanos(c.UpdatedAt))
	w.set(w.kbuf, w.vbuf)
}

// lastCursor returns the last cursor of user's stream.
func (w *writer) lastCursor(user chat.Address) (int64, error) {
	if c, ok := w.cursors[user]; ok {
		return c, nil
	}
	prefix := updatePrefix(nil, user)
	it, err := w.b.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	var last int64
	if it.Last() {
		k := it.Key()
		if len(k) != len(prefix)+8 {
			it.Close()
			return 0, fmt.Errorf("pebblestore: malformed stream key %q", k)
		}
		last = int64(be.Uint64(k[len(prefix):]))
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	w.cursors[user] = last
	return last, nil
}

// loadCursors makes sure the cursors of users are cached, so that the
// writes that follow cannot fail halfway.
func (w *writer) loadCursors(users []chat.Address) error {
	for _, u := range users {
		if _, err := w.lastCursor(u); err != nil {
			return err
		}
	}
	return nil
}

// appendEntry appends the entry value to user's stream and returns its
// cursor. The user's cursor must be cached (loadCursors).
func (w *writer) appendEntry(user chat.Address, value []byte) int64 {
	c := w.cursors[user] + 1
	w.cursors[user] = c
	w.kbuf2 = updateKey(w.kbuf2[:0], user, c)
	w.set(w.kbuf2, value)
	return c
}

// moveListEntry moves conv in user's list from time from to time to;
// from < 0 with add set means there is no entry yet.
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
	entry, err := conversationEntry(&c)
	if err != nil {
		return chat.Conversation{}, nil, false, err
	}
	stored := c
	if err := w.putConversation(&stored); err != nil {
		return chat.Conversation{}, nil, false, err
	}
	at := nanos(c.UpdatedAt)
	deliveries := make([]chat.Delivery, len(c.Members))
	for i, m := range c.Members {
		deliveries[i] = chat.Delivery{User: m, Cursor: w.appendEntry(m, entry)}
		w.moveListEntry(m, c.ID, 0, at, false)
	}
	return cloneConversation(&c), deliveries, true, nil
}

func conversationEntry(c *chat.Conversation) ([]byte, error) {
	v, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte{entryConversation}, v...), nil
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
	entry, err := conversationEntry(&c)
	if err != nil {
		return chat.Conversation{}, nil, err
	}
	stored := cloneConversation(&c)
	if err := w.putConversation(&stored); err != nil {
		return chat.Conversation{}, nil, err
	}
	from := nanos(old.UpdatedAt)
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
	w.kbuf = idemKey(w.kbuf[:0], m.ConversationID, m.Sender, m.ClientID)
	var seq, cursor int64
	found, err := w.get(w.kbuf, func(v []byte) error {
		if len(v) != 16 {
			return errors.New("pebblestore: malformed idempotency record")
		}
		seq, cursor = int64(be.Uint64(v)), int64(be.Uint64(v[8:]))
		return nil
	})
	if err != nil {
		return store.Appended{}, err
	}
	if found {
		w.kbuf = messageKey(w.kbuf[:0], m.ConversationID, seq)
		var first chat.Message
		found, err := w.get(w.kbuf, func(v []byte) error {
			var err error
			first, err = decodeMessage(v, m.ConversationID, seq)
			return err
		})
		if err == nil && !found {
			err = fmt.Errorf("pebblestore: message %s/%d is missing", m.ConversationID, seq)
		}
		if err != nil {
			return store.Appended{}, err
		}
		return store.Appended{Message: first, Cursor: cursor}, nil
	}
	if !c.HasMember(m.Sender) {
		return store.Appended{}, fmt.Errorf("pebblestore: %s in conversation %s: %w", m.Sender, m.ConversationID, store.ErrNotFound)
	}
	if err := w.loadCursors(c.Members); err != nil {
		return store.Appended{}, err
	}

	// Checks done; from here on nothing fails.
	m.Seq = c.LastSeq + 1
	m.SentAt = normTime(m.SentAt)
	w.kbuf = messageKey(w.kbuf[:0], m.ConversationID, m.Seq)
	w.vbuf = encodeMessage(w.vbuf[:0], &m)
	w.set(w.kbuf, w.vbuf)

	from, to := nanos(c.UpdatedAt), nanos(m.SentAt)
	w.vbuf = encodeMessageRef(w.vbuf[:0], m.ConversationID, m.Seq)
	deliveries := make([]chat.Delivery, len(c.Members))
	for i, member := range c.Members {
		cur := w.appendEntry(member, w.vbuf)
		deliveries[i] = chat.Delivery{User: member, Cursor: cur}
		if member == m.Sender {
			cursor = cur
		}
		w.moveListEntry(member, m.ConversationID, from, to, true)
	}

	w.kbuf = idemKey(w.kbuf[:0], m.ConversationID, m.Sender, m.ClientID)
	w.vbuf = be.AppendUint64(be.AppendUint64(w.vbuf[:0], uint64(m.Seq)), uint64(cursor))
	w.set(w.kbuf, w.vbuf)

	w.kbuf = readKey(w.kbuf[:0], m.ConversationID, m.Sender)
	w.vbuf = be.AppendUint64(w.vbuf[:0], uint64(m.Seq))
	w.set(w.kbuf, w.vbuf)

	// The cached conversation is shared with earlier answers of this
	// writer only through copies, so it may change in place.
	c.LastSeq, c.UpdatedAt = m.Seq, m.SentAt
	w.putHead(c)
	if m.Meta != nil {
		m.Meta = append(json.RawMessage(nil), m.Meta...)
	}
	return store.Appended{Message: m, Cursor: cursor, Deliveries: deliveries, Created: true}, nil
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
