// Package memstore is the reference Store: everything in maps under one
// mutex. It persists nothing and is meant for tests and for trying things
// out; its value is being simple enough to be obviously correct, so that the
// conformance suite can be checked against it.
//
// Values are copied on the way in and on the way out, so a caller never
// shares memory with the store's state.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var _ store.Store = (*Store)(nil)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex // guards every field below
	closed  bool
	apps    map[string]chat.App
	convs   map[string]*conversation
	streams map[chat.Address][]chat.Update // index i holds cursor i+1
	blocks  map[blockKey]bool
}

type conversation struct {
	c    chat.Conversation
	msgs []chat.Message // index i holds seq i+1
	// sentCursor[i] is the sender's cursor for msgs[i], answered again on
	// an idempotent repeat.
	sentCursor []int64
	byClient   map[clientKey]int64 // (sender, client id) -> seq
	read       map[chat.Address]int64
}

type clientKey struct {
	sender   chat.Address
	clientID string
}

type blockKey struct{ blocker, blocked chat.Address }

// New returns an empty store.
func New() *Store {
	return &Store{
		apps:    map[string]chat.App{},
		convs:   map[string]*conversation{},
		streams: map[chat.Address][]chat.Update{},
		blocks:  map[blockKey]bool{},
	}
}

// lock takes the mutex, or reports ErrClosed without holding it.
func (s *Store) lock(op string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memstore: %s: %w", op, store.ErrClosed)
	}
	return nil
}

func copyApp(a chat.App) chat.App {
	a.Interop = slices.Clone(a.Interop)
	return a
}

func copyConv(c chat.Conversation) chat.Conversation {
	c.Members = slices.Clone(c.Members)
	return c
}

func copyMsg(m chat.Message) chat.Message {
	m.Meta = slices.Clone(m.Meta)
	return m
}

func copyUpdate(u chat.Update) chat.Update {
	if u.Message != nil {
		m := copyMsg(*u.Message)
		u.Message = &m
	}
	if u.Conversation != nil {
		c := copyConv(*u.Conversation)
		u.Conversation = &c
	}
	return u
}

// appendUpdate adds u to user's stream and returns the delivery. u must not
// share memory with anything the caller keeps.
func (s *Store) appendUpdate(user chat.Address, u chat.Update) chat.Delivery {
	u.Cursor = int64(len(s.streams[user])) + 1
	s.streams[user] = append(s.streams[user], u)
	return chat.Delivery{User: user, Cursor: u.Cursor}
}

// CreateApp implements store.Store.
func (s *Store) CreateApp(ctx context.Context, app chat.App) error {
	if err := s.lock("create app"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.apps[app.ID]; ok {
		return fmt.Errorf("memstore: create app %s: %w", app.ID, store.ErrConflict)
	}
	s.apps[app.ID] = copyApp(app)
	return nil
}

// App implements store.Store.
func (s *Store) App(ctx context.Context, id string) (chat.App, error) {
	if err := s.lock("app"); err != nil {
		return chat.App{}, err
	}
	defer s.mu.Unlock()
	a, ok := s.apps[id]
	if !ok {
		return chat.App{}, fmt.Errorf("memstore: app %s: %w", id, store.ErrNotFound)
	}
	return copyApp(a), nil
}

// Apps implements store.Store.
func (s *Store) Apps(ctx context.Context) ([]chat.App, error) {
	if err := s.lock("apps"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	list := make([]chat.App, 0, len(s.apps))
	for _, a := range s.apps {
		list = append(list, copyApp(a))
	}
	slices.SortFunc(list, func(a, b chat.App) int { return cmp.Compare(a.ID, b.ID) })
	return list, nil
}

// UpdateApp implements store.Store. fn runs under the store's lock, so it
// is called exactly once.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error) {
	if err := s.lock("update app"); err != nil {
		return chat.App{}, err
	}
	defer s.mu.Unlock()
	a, ok := s.apps[id]
	if !ok {
		return chat.App{}, fmt.Errorf("memstore: update app %s: %w", id, store.ErrNotFound)
	}
	a = copyApp(a)
	if err := fn(&a); err != nil {
		return chat.App{}, err
	}
	a.ID = id
	s.apps[id] = copyApp(a)
	return a, nil
}

// CreateConversation implements store.Store.
func (s *Store) CreateConversation(ctx context.Context, c chat.Conversation) (chat.Conversation, []chat.Delivery, bool, error) {
	if err := s.lock("create conversation"); err != nil {
		return chat.Conversation{}, nil, false, err
	}
	defer s.mu.Unlock()
	if cv, ok := s.convs[c.ID]; ok {
		return copyConv(cv.c), nil, false, nil
	}
	c = copyConv(c)
	c.LastSeq = 0
	c.UpdatedAt = c.CreatedAt
	cv := &conversation{c: c, byClient: map[clientKey]int64{}, read: map[chat.Address]int64{}}
	s.convs[c.ID] = cv
	deliveries := make([]chat.Delivery, 0, len(c.Members))
	for _, m := range c.Members {
		cv.read[m] = 0
		cc := copyConv(c)
		deliveries = append(deliveries, s.appendUpdate(m, chat.Update{Type: chat.UpdateConversation, Conversation: &cc}))
	}
	return copyConv(c), deliveries, true, nil
}

// Conversation implements store.Store.
func (s *Store) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	if err := s.lock("conversation"); err != nil {
		return chat.Conversation{}, err
	}
	defer s.mu.Unlock()
	cv, ok := s.convs[id]
	if !ok {
		return chat.Conversation{}, fmt.Errorf("memstore: conversation %s: %w", id, store.ErrNotFound)
	}
	return copyConv(cv.c), nil
}

// UpdateMembers implements store.Store. fn runs under the store's lock, so
// it is called exactly once.
func (s *Store) UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	if err := s.lock("update members"); err != nil {
		return chat.Conversation{}, nil, err
	}
	defer s.mu.Unlock()
	cv, ok := s.convs[id]
	if !ok {
		return chat.Conversation{}, nil, fmt.Errorf("memstore: update members %s: %w", id, store.ErrNotFound)
	}
	work := copyConv(cv.c)
	if err := fn(&work); err != nil {
		return chat.Conversation{}, nil, err
	}
	if slices.Equal(work.Members, cv.c.Members) {
		return copyConv(cv.c), nil, nil
	}
	old := cv.c.Members
	// Only Members may change; everything else is taken from the store.
	next := copyConv(cv.c)
	next.Members = slices.Clone(work.Members)
	next.UpdatedAt = now
	cv.c = next
	var deliveries []chat.Delivery
	for _, m := range old {
		cc := copyConv(next)
		deliveries = append(deliveries, s.appendUpdate(m, chat.Update{Type: chat.UpdateConversation, Conversation: &cc}))
	}
	for _, m := range next.Members {
		if slices.Contains(old, m) {
			continue
		}
		cv.read[m] = 0
		cc := copyConv(next)
		deliveries = append(deliveries, s.appendUpdate(m, chat.Update{Type: chat.UpdateConversation, Conversation: &cc}))
	}
	return copyConv(next), deliveries, nil
}

// AppendMessage implements store.Store.
func (s *Store) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	if err := s.lock("append message"); err != nil {
		return store.Appended{}, err
	}
	defer s.mu.Unlock()
	cv, ok := s.convs[m.ConversationID]
	if !ok || !cv.c.HasMember(m.Sender) {
		return store.Appended{}, fmt.Errorf("memstore: append to %s: %w", m.ConversationID, store.ErrNotFound)
	}
	return s.appendLocked(cv, m), nil
}

// AppendMessages implements store.BatchAppender.
func (s *Store) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	if err := s.lock("append messages"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	first := ms[0]
	cv, ok := s.convs[first.ConversationID]
	if !ok || !cv.c.HasMember(first.Sender) {
		return nil, fmt.Errorf("memstore: append to %s: %w", first.ConversationID, store.ErrNotFound)
	}
	if err := store.CheckBatch(ms); err != nil {
		return nil, fmt.Errorf("memstore: %w", err)
	}
	res := make([]store.Appended, len(ms))
	for i, m := range ms {
		res[i] = s.appendLocked(cv, m)
	}
	return res, nil
}

// appendLocked appends m to cv, whose membership was checked; s.mu is held.
func (s *Store) appendLocked(cv *conversation, m chat.Message) store.Appended {
	key := clientKey{m.Sender, m.ClientID}
	if seq, ok := cv.byClient[key]; ok {
		return store.Appended{Message: copyMsg(cv.msgs[seq-1]), Cursor: cv.sentCursor[seq-1]}
	}
	m = copyMsg(m)
	m.Seq = cv.c.LastSeq + 1
	cv.msgs = append(cv.msgs, m)
	cv.byClient[key] = m.Seq
	cv.c.LastSeq = m.Seq
	cv.c.UpdatedAt = m.SentAt
	cv.read[m.Sender] = m.Seq
	res := store.Appended{Message: copyMsg(m), Created: true}
	for _, member := range cv.c.Members {
		mm := copyMsg(m)
		d := s.appendUpdate(member, chat.Update{Type: chat.UpdateMessage, Message: &mm})
		if member == m.Sender {
			res.Cursor = d.Cursor
		}
		res.Deliveries = append(res.Deliveries, d)
	}
	cv.sentCursor = append(cv.sentCursor, res.Cursor)
	return res
}

// Messages implements store.Store.
func (s *Store) Messages(ctx context.Context, conversationID string, before int64, limit int) ([]chat.Message, error) {
	if err := s.lock("messages"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	cv, ok := s.convs[conversationID]
	if !ok {
		return nil, nil
	}
	end := int64(len(cv.msgs)) // seqs 1..end are candidates
	if before > 0 && before-1 < end {
		end = before - 1
	}
	var list []chat.Message
	for seq := end; seq >= 1 && len(list) < limit; seq-- {
		list = append(list, copyMsg(cv.msgs[seq-1]))
	}
	return list, nil
}

// MarkRead implements store.Store.
func (s *Store) MarkRead(ctx context.Context, conversationID string, reader chat.Address, seq int64) (int64, []chat.Delivery, error) {
	if err := s.lock("mark read"); err != nil {
		return 0, nil, err
	}
	defer s.mu.Unlock()
	cv, ok := s.convs[conversationID]
	if !ok || !cv.c.HasMember(reader) {
		return 0, nil, fmt.Errorf("memstore: mark read in %s: %w", conversationID, store.ErrNotFound)
	}
	if seq <= cv.read[reader] {
		return cv.read[reader], nil, nil
	}
	cv.read[reader] = seq
	deliveries := make([]chat.Delivery, 0, len(cv.c.Members))
	for _, m := range cv.c.Members {
		deliveries = append(deliveries, s.appendUpdate(m, chat.Update{
			Type: chat.UpdateRead, ConversationID: conversationID, Reader: reader, Seq: seq,
		}))
	}
	return seq, deliveries, nil
}

// Conversations implements store.Store.
func (s *Store) Conversations(ctx context.Context, user chat.Address, page *store.Page, limit int) ([]chat.Summary, *store.Page, error) {
	if err := s.lock("conversations"); err != nil {
		return nil, nil, err
	}
	defer s.mu.Unlock()
	var mine []*conversation
	for _, cv := range s.convs {
		if cv.c.HasMember(user) && page.Before(cv.c.UpdatedAt, cv.c.ID) {
			mine = append(mine, cv)
		}
	}
	slices.SortFunc(mine, func(a, b *conversation) int {
		if c := b.c.UpdatedAt.Compare(a.c.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.c.ID, a.c.ID)
	})
	var next *store.Page
	if limit < 1 {
		// Nothing to return, and no position to name: the caller checks
		// limits, this only keeps a bad one from panicking.
		return nil, nil, nil
	}
	if len(mine) > limit {
		mine = mine[:limit]
		last := mine[len(mine)-1].c
		next = &store.Page{UpdatedAt: last.UpdatedAt, ID: last.ID}
	}
	list := make([]chat.Summary, 0, len(mine))
	for _, cv := range mine {
		sum := chat.Summary{Conversation: copyConv(cv.c), ReadSeq: cv.read[user]}
		if n := len(cv.msgs); n > 0 {
			m := copyMsg(cv.msgs[n-1])
			sum.LastMessage = &m
		}
		list = append(list, sum)
	}
	return list, next, nil
}

// Updates implements store.Store.
func (s *Store) Updates(ctx context.Context, user chat.Address, after int64, limit int) ([]chat.Update, error) {
	if err := s.lock("updates"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	stream := s.streams[user]
	if after < 0 {
		after = 0
	}
	var list []chat.Update
	for i := after; i < int64(len(stream)) && len(list) < limit; i++ {
		list = append(list, copyUpdate(stream[i]))
	}
	return list, nil
}

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, blocker, blocked chat.Address) error {
	if err := s.lock("block"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.blocks[blockKey{blocker, blocked}] = true
	return nil
}

// Unblock implements store.Store.
func (s *Store) Unblock(ctx context.Context, blocker, blocked chat.Address) error {
	if err := s.lock("unblock"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.blocks, blockKey{blocker, blocked})
	return nil
}

// Blocked implements store.Store.
func (s *Store) Blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error) {
	if err := s.lock("blocked"); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	return s.blocks[blockKey{blocker, blocked}], nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.lock("ping"); err != nil {
		return err
	}
	s.mu.Unlock()
	return nil
}

// Close implements store.Store. Closing again is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
