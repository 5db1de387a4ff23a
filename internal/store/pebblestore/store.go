package pebblestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// Options tune the store. Zero values mean defaults.
type Options struct {
	// Logger receives Pebble's messages. Nil: discard.
	Logger *slog.Logger
	// CacheBytes is the size of Pebble's block cache. Pebble charges its
	// memtables to it too, so it is raised to at least 4 × MemTableBytes.
	// Zero: 256 MiB.
	CacheBytes int64
	// MemTableBytes is the size of one Pebble memtable. Zero: 32 MiB.
	MemTableBytes uint64
	// MaxBatch is how many write calls at most share one commit (and so
	// one fsync). Zero: 256.
	MaxBatch int
	// MaxBatchBytes ends a batch early once it holds this many bytes.
	// Zero: 16 MiB.
	MaxBatchBytes int
	// CacheEntries bounds the writer's cache of conversations and of
	// stream cursors (each). Zero: 100,000.
	CacheEntries int

	// openedLimit bounds the records put in filters at open (recent.go).
	// Zero: as many as the filters of recent records hold.
	openedLimit int
}

// Store is a store.Store in a Pebble database. It is safe for concurrent
// use. Its methods do what store.Store documents.
type Store struct {
	db   *pebble.DB
	reqs chan *request
	// quit is closed by Close to stop the writer; stopped is closed by the
	// writer when it has stopped.
	quit, stopped chan struct{}

	gate   *durableGate
	stalls *stalls // Pebble's write stalls, for the metrics (stats.go)
	// bg counts the goroutine that reads the idempotency records held at
	// open into filters (scanOpened); Close waits for it.
	bg sync.WaitGroup

	mu     sync.RWMutex // guards closed; read locked by every read of db
	closed bool
}

var _ store.Store = (*Store)(nil)

// Open opens the store in dir, creating dir if it is missing.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 256 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 32 << 20
	}
	if o.CacheBytes < 4*int64(o.MemTableBytes) {
		o.CacheBytes = 4 * int64(o.MemTableBytes)
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 16 << 20
	}
	if o.CacheEntries <= 0 {
		o.CacheEntries = 100_000
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:              cache,
		MemTableSize:       o.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{o.Logger},
		Levels:             make([]pebble.LevelOptions, 7),
		// Every flush spans the whole key space (conversations and
		// streams are spread by their ids), so each compaction out of
		// L0 rewrites all of the level below. Letting 16 flushes gather
		// in L0 first (Pebble's default is 4) rewrites that level a
		// quarter as often: 0.80 to 0.83 × the CPU per delivered message
		// over 2,000,000 WebSocket deliveries (docs/benchmarks.md), with
		// history and stream reads no slower. Writes stall only past 32.
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 32,
	}
	// The default comparer, with the whole key as its prefix: the bloom
	// filters (built on the whole key, as before) then answer SeekPrefixGE
	// too, which the idempotency lookups use (idem.go).
	cmp := *pebble.DefaultComparer
	cmp.Split = func(key []byte) int { return len(key) }
	popts.Comparer = &cmp
	popts.TablePropertyCollectors = idemCollectors
	flushed := &flushWatch{}
	stalled := &stalls{}
	popts.EventListener = &pebble.EventListener{FlushEnd: flushed.flushEnd,
		WriteStallBegin: stalled.begin, WriteStallEnd: stalled.end}
	for i := range popts.Levels {
		// Most point reads look for what is not there (a new client id,
		// a block that was never made): bloom filters answer those
		// without reading data blocks.
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		popts.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	// No memtable may hold an idempotency record the writer did not write
	// (idem.go). Pebble 1.1 already flushes what it replays from the WAL
	// when it opens; this keeps that true whatever Pebble does.
	if err := db.Flush(); err != nil {
		db.Close()
		return nil, fmt.Errorf("pebblestore: open %s: flush: %w", dir, err)
	}
	s := &Store{
		stalls:  stalled,
		db:      db,
		reqs:    make(chan *request, o.MaxBatch),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		gate:    newDurableGate(),
	}
	w := &writer{
		db:         db,
		maxBatch:   o.MaxBatch,
		maxBytes:   o.MaxBatchBytes,
		cacheLimit: o.CacheEntries,
	}
	w.convs = make(map[string]*chat.Conversation)
	w.streams = make(map[chat.Address]*stream)
	w.pending = make(map[string]pendingValue)
	w.keysOf = make(map[uint64][]string)
	w.idem = newIdemIndex()
	w.recent = newRecentIdem(recentSetSize, recentSets)
	if o.openedLimit == 0 {
		o.openedLimit = recentSetSize * recentSets
	}
	w.openedc = s.scanOpened(w.idem.hash, o.openedLimit, o.Logger)
	w.flushed = flushed
	w.moved = make(map[string]int64)
	w.newMessages = make(map[string]int64)
	go s.run(w)
	return s, nil
}

// scanOpened puts the idempotency records the store holds now into
// filters, on a goroutine of its own, and sends them to the writer, which
// takes them between batches; nothing when it gave up.
func (s *Store) scanOpened(hash func([]byte) uint64, limit int, log *slog.Logger) <-chan []*bloomSet {
	c := make(chan []*bloomSet, 1)
	snap := s.db.NewSnapshot()
	s.bg.Go(func() {
		defer snap.Close()
		start := time.Now()
		sets, n, err := scanOpened(snap, hash, recentSetSize, limit, s.quit)
		switch {
		case errors.Is(err, errScanStopped):
		case errors.Is(err, errTooManyRecords):
			log.Info("pebblestore: too many idempotency records for filters; new ids are looked up in the sstables", "records", n)
		case err != nil:
			log.Warn("pebblestore: reading the idempotency records into filters failed; new ids are looked up in the sstables", "err", err)
		case n > 0:
			log.Info("pebblestore: the idempotency records are in filters", "records", n, "took", time.Since(start).Round(time.Millisecond))
		}
		if err == nil {
			c <- sets
		}
	})
	return c
}

// pebbleLogger sends Pebble's messages to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf must not return: Pebble calls it when it cannot go on safely.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "component", "pebble")
	panic("pebble: " + msg)
}

// Close stops the writer (calls still queued fail with store.ErrClosed),
// waits for the reads in progress and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("pebblestore: %w", store.ErrClosed)
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	<-s.stopped
	s.bg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("pebblestore: close: %w", err)
	}
	return nil
}

// reading takes the read lock for a read of db; the caller unlocks.
func (s *Store) reading() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("pebblestore: %w", store.ErrClosed)
	}
	return nil
}

// get reads key; found is false when it does not exist.
func get(r pebble.Reader, key []byte, fn func(v []byte) error) (found bool, err error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return true, fn(v)
}

// A getter looks up single keys; found is false when the key does not
// exist. last finds the last key with prefix.
type getter interface {
	get(key []byte, fn func(v []byte) error) (found bool, err error)
	last(prefix []byte, fn func(k, v []byte) error) (found bool, err error)
}

// last reads the last key with prefix.
func last(r pebble.Reader, prefix []byte, fn func(k, v []byte) error) (found bool, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return false, err
	}
	if it.Last() {
		var v []byte
		if v, err = it.ValueAndErr(); err == nil {
			found, err = true, fn(it.Key(), v)
		}
	}
	if e := it.Close(); err == nil {
		err = e
	}
	return found, err
}

// readerGetter does a Get per key.
type readerGetter struct{ r pebble.Reader }

func (g readerGetter) get(key []byte, fn func(v []byte) error) (bool, error) {
	return get(g.r, key, fn)
}

func (g readerGetter) last(prefix []byte, fn func(k, v []byte) error) (bool, error) {
	return last(g.r, prefix, fn)
}

// iterGetter looks up many keys through one iterator, which costs less
// than a Get each (a Get builds and drops an iterator every time), and
// sees one consistent state. close it when done.
type iterGetter struct {
	r  pebble.Reader
	it *pebble.Iterator
}

func (g *iterGetter) get(key []byte, fn func(v []byte) error) (bool, error) {
	if g.it == nil {
		it, err := g.r.NewIter(nil)
		if err != nil {
			return false, err
		}
		g.it = it
	}
	if !g.it.SeekGE(key) || !bytes.Equal(g.it.Key(), key) {
		return false, g.it.Error()
	}
	v, err := g.it.ValueAndErr()
	if err != nil {
		return false, err
	}
	return true, fn(v)
}

func (g *iterGetter) last(prefix []byte, fn func(k, v []byte) error) (bool, error) {
	if g.it == nil {
		it, err := g.r.NewIter(nil)
		if err != nil {
			return false, err
		}
		g.it = it
	}
	end := prefixEnd(prefix)
	var ok bool
	if end == nil {
		ok = g.it.Last()
	} else {
		ok = g.it.SeekLT(end)
	}
	if !ok || !bytes.HasPrefix(g.it.Key(), prefix) {
		return false, g.it.Error()
	}
	v, err := g.it.ValueAndErr()
	if err != nil {
		return false, err
	}
	return true, fn(g.it.Key(), v)
}

func (g *iterGetter) close() {
	if g.it != nil {
		g.it.Close()
	}
}

func (s *Store) CreateApp(ctx context.Context, app chat.App) error {
	app.CreatedAt = normTime(app.CreatedAt)
	return s.submit(ctx, func(w *writer) error { return w.createApp(app) })
}

func (s *Store) App(ctx context.Context, id string) (chat.App, error) {
	if err := s.reading(); err != nil {
		return chat.App{}, err
	}
	defer s.mu.RUnlock()
	var app chat.App
	found, err := get(s.db, appKey(nil, id), func(v []byte) error { return json.Unmarshal(v, &app) })
	if err != nil {
		return chat.App{}, fmt.Errorf("pebblestore: app %s: %w", id, err)
	}
	if !found {
		return chat.App{}, fmt.Errorf("pebblestore: app %s: %w", id, store.ErrNotFound)
	}
	return app, nil
}

func (s *Store) Apps(ctx context.Context) ([]chat.App, error) {
	if err := s.reading(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	prefix := []byte{pApp}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: apps: %w", err)
	}
	var list []chat.App
	for ok := it.First(); ok; ok = it.Next() {
		var app chat.App
		if err := json.Unmarshal(it.Value(), &app); err != nil {
			it.Close()
			return nil, fmt.Errorf("pebblestore: app %s: %w", it.Key()[1:], err)
		}
		list = append(list, app)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("pebblestore: apps: %w", err)
	}
	return list, nil
}

func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error) {
	var app chat.App
	err := s.submit(ctx, func(w *writer) (err error) {
		app, err = w.updateApp(id, fn)
		return err
	})
	if err != nil {
		return chat.App{}, err
	}
	return app, nil
}

func (s *Store) CreateConversation(ctx context.Context, c chat.Conversation) (conv chat.Conversation, deliveries []chat.Delivery, created bool, err error) {
	err = s.submit(ctx, func(w *writer) (err error) {
		conv, deliveries, created, err = w.createConversation(c)
		return err
	})
	if err != nil {
		return chat.Conversation{}, nil, false, err
	}
	return conv, deliveries, created, nil
}

// conversation reads one conversation; nil when it does not exist.
func conversation(r getter, id string) (*chat.Conversation, error) {
	var c *chat.Conversation
	found, err := r.get(convKey(nil, id), func(v []byte) (err error) {
		c, err = decodeConversation(v)
		return err
	})
	if err != nil || !found {
		return nil, err
	}
	prefix := messagePrefix(nil, id)
	_, err = r.last(prefix, func(k, v []byte) error {
		return withLastMessage(c, k, len(prefix), v)
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: conversation %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	if err := s.reading(); err != nil {
		return chat.Conversation{}, err
	}
	defer s.mu.RUnlock()
	c, err := conversation(readerGetter{s.db}, id)
	if err != nil {
		return chat.Conversation{}, err
	}
	if c == nil {
		return chat.Conversation{}, fmt.Errorf("pebblestore: conversation %s: %w", id, store.ErrNotFound)
	}
	return *c, nil
}

func (s *Store) UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	var (
		conv       chat.Conversation
		deliveries []chat.Delivery
	)
	at := nanos(now)
	err := s.submit(ctx, func(w *writer) (err error) {
		conv, deliveries, err = w.updateMembers(id, at, fn)
		return err
	})
	if err != nil {
		return chat.Conversation{}, nil, err
	}
	return conv, deliveries, nil
}

func (s *Store) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	var res store.Appended
	err := s.submit(ctx, func(w *writer) (err error) {
		res, err = w.appendMessage(m)
		return err
	})
	if err != nil {
		return store.Appended{}, err
	}
	return res, nil
}

// AppendMessages implements store.BatchAppender: one request to the writer,
// so the messages share one commit and one fsync.
func (s *Store) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	var res []store.Appended
	err := s.submit(ctx, func(w *writer) (err error) {
		res, err = w.appendMessages(ms)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Store) Messages(ctx context.Context, conversationID string, before int64, limit int) ([]chat.Message, error) {
	if err := s.reading(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if limit <= 0 {
		return nil, nil
	}
	prefix := messagePrefix(nil, conversationID)
	upper := prefixEnd(prefix)
	if first := s.gate.conversation(conversationID); first > 0 && (before <= 0 || first < before) {
		before = first
	}
	if before > 0 {
		upper = messageKey(nil, conversationID, before)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: messages of %s: %w", conversationID, err)
	}
	var list []chat.Message
	for ok := it.Last(); ok && len(list) < limit; ok = it.Prev() {
		k := it.Key()
		if len(k) != len(prefix)+8 {
			it.Close()
			return nil, fmt.Errorf("pebblestore: malformed message key %q", k)
		}
		m, err := decodeMessage(it.Value(), conversationID, int64(be.Uint64(k[len(prefix):])))
		if err != nil {
			it.Close()
			return nil, err
		}
		list = append(list, m)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("pebblestore: messages of %s: %w", conversationID, err)
	}
	return list, nil
}

func (s *Store) MarkRead(ctx context.Context, conversationID string, reader chat.Address, seq int64) (readSeq int64, deliveries []chat.Delivery, err error) {
	err = s.submit(ctx, func(w *writer) (err error) {
		readSeq, deliveries, err = w.markRead(conversationID, reader, seq)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	return readSeq, deliveries, nil
}

func (s *Store) Conversations(ctx context.Context, user chat.Address, page *store.Page, limit int) (list []chat.Summary, next *store.Page, err error) {
	if err := s.reading(); err != nil {
		return nil, nil, err
	}
	defer s.mu.RUnlock()
	if limit <= 0 {
		return nil, nil, nil
	}
	// One snapshot, so that every summary and the list agree.
	snap := s.db.NewSnapshot()
	defer snap.Close()
	prefix := listPrefix(nil, user)
	lower := prefix
	if page != nil {
		// The key of the page's last entry; skip it and what precedes.
		lower = append(listKey(nil, user, nanos(page.UpdatedAt), page.ID), 0)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, nil, fmt.Errorf("pebblestore: conversations of %s: %w", user, err)
	}
	defer it.Close()
	points := &iterGetter{r: snap}
	defer points.close()
	for ok := it.First(); ok; ok = it.Next() {
		at, id, err := parseListKey(it.Key(), len(prefix))
		if err != nil {
			return nil, nil, err
		}
		if len(list) == limit {
			last := list[limit-1]
			return list, &store.Page{UpdatedAt: last.UpdatedAt, ID: last.ID}, nil
		}
		sum, err := summary(points, id, user)
		if err != nil {
			return nil, nil, err
		}
		// The list and the conversation are written together, so they
		// agree; the position is the list's all the same.
		sum.UpdatedAt = fromNanos(at)
		list = append(list, sum)
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("pebblestore: conversations of %s: %w", user, err)
	}
	return list, nil, nil
}

func summary(r getter, id string, user chat.Address) (chat.Summary, error) {
	c, err := conversation(r, id)
	if err != nil {
		return chat.Summary{}, err
	}
	if c == nil {
		return chat.Summary{}, fmt.Errorf("pebblestore: listed conversation %s is missing", id)
	}
	sum := chat.Summary{Conversation: *c}
	_, err = r.get(readKey(nil, id, user), func(v []byte) error {
		if len(v) != 8 {
			return errors.New("pebblestore: malformed read position")
		}
		sum.ReadSeq = int64(be.Uint64(v))
		return nil
	})
	if err != nil {
		return chat.Summary{}, err
	}
	if c.LastSeq > 0 {
		m, err := readMessage(r, id, c.LastSeq)
		if err != nil {
			return chat.Summary{}, err
		}
		sum.LastMessage = &m
	}
	return sum, nil
}

func readMessage(r getter, conv string, seq int64) (chat.Message, error) {
	var m chat.Message
	found, err := r.get(messageKey(nil, conv, seq), func(v []byte) (err error) {
		m, err = decodeMessage(v, conv, seq)
		return err
	})
	if err == nil && !found {
		err = errors.New("missing")
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("pebblestore: message %s/%d: %w", conv, seq, err)
	}
	return m, nil
}

func (s *Store) Updates(ctx context.Context, user chat.Address, after int64, limit int) ([]chat.Update, error) {
	if err := s.reading(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if limit <= 0 {
		return nil, nil
	}
	if after < 0 {
		after = 0
	}
	prefix := updatePrefix(nil, user)
	upper := prefixEnd(prefix)
	if first := s.gate.stream(user); first > 0 {
		if first <= after+1 {
			return nil, nil
		}
		upper = updateKey(nil, user, first)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: updates of %s: %w", user, err)
	}
	defer it.Close()
	// Created after it, so it sees every message that it references.
	d := updateDecoder{points: iterGetter{r: s.db}}
	defer d.points.close()
	// The run that holds cursor after+1 may start before it: start at the
	// last key before after+1, whose entries up to after are skipped.
	ok := it.SeekLT(updateKey(nil, user, after+1))
	if !ok {
		ok = it.First()
	}
	var list []chat.Update
	for ; ok && len(list) < limit; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+8 {
			return nil, fmt.Errorf("pebblestore: malformed stream key %q", k)
		}
		cursor := int64(be.Uint64(k[len(prefix):]))
		if list, err = d.decode(list, it.Value(), cursor, after, limit); err != nil {
			return nil, fmt.Errorf("pebblestore: update %s/%d: %w", user, cursor, err)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebblestore: updates of %s: %w", user, err)
	}
	return list, nil
}

var errBadEntry = errors.New("malformed stream entry")

// updateDecoder decodes stream entries, resolving message references.
type updateDecoder struct {
	points iterGetter
	conv   string // the last conversation id, reused while it repeats
}

// decode appends to list the updates of the stored value v, whose key is
// cursor, that come after cursor after, until list holds limit.
func (d *updateDecoder) decode(list []chat.Update, v []byte, cursor, after int64, limit int) ([]chat.Update, error) {
	seq, n, conv, isRun, err := parseRun(v)
	if err != nil {
		return list, err
	}
	if !isRun {
		if cursor <= after {
			return list, nil
		}
		u, err := decodeEntry(v)
		if err != nil {
			return list, err
		}
		u.Cursor = cursor
		return append(list, u), nil
	}
	if string(conv) != d.conv {
		d.conv = string(conv)
	}
	for i := max(0, after+1-cursor); i < int64(n) && len(list) < limit; i++ {
		m, err := readMessage(&d.points, d.conv, seq+i)
		if err != nil {
			return list, err
		}
		list = append(list, chat.Update{Type: chat.UpdateMessage, Message: &m, Cursor: cursor + i})
	}
	return list, nil
}

// decodeEntry decodes a stream entry of a kind other than messages.
func decodeEntry(v []byte) (chat.Update, error) {
	switch v[0] {
	case entryRead:
		if len(v) < 9 {
			return chat.Update{}, errBadEntry
		}
		u := chat.Update{Type: chat.UpdateRead, Seq: int64(be.Uint64(v[1:]))}
		rest := v[9:]
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return chat.Update{}, errBadEntry
		}
		u.ConversationID = string(rest[k : k+int(n)])
		u.Reader = chat.Address(rest[k+int(n):])
		return u, nil
	case entryConversation:
		c, err := decodeConversation(v[1:])
		if err != nil {
			return chat.Update{}, err
		}
		return chat.Update{Type: chat.UpdateConversation, Conversation: c}, nil
	}
	return chat.Update{}, errBadEntry
}

func (s *Store) Block(ctx context.Context, blocker, blocked chat.Address) error {
	return s.submit(ctx, func(w *writer) error {
		w.kbuf = blockKey(w.kbuf[:0], blocker, blocked)
		w.set(w.kbuf, nil)
		return nil
	})
}

func (s *Store) Unblock(ctx context.Context, blocker, blocked chat.Address) error {
	return s.submit(ctx, func(w *writer) error {
		w.kbuf = blockKey(w.kbuf[:0], blocker, blocked)
		w.del(w.kbuf)
		return nil
	})
}

func (s *Store) Blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error) {
	if err := s.reading(); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	found, err := get(s.db, blockKey(nil, blocker, blocked), func([]byte) error { return nil })
	if err != nil {
		return false, fmt.Errorf("pebblestore: block: %w", err)
	}
	return found, nil
}

// Ping reads one key, which checks that the database is open and serving.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.reading(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if _, err := get(s.db, []byte{pApp}, func([]byte) error { return nil }); err != nil {
		return fmt.Errorf("pebblestore: ping: %w", err)
	}
	return nil
}
