// Package storetest is the conformance suite for store.Store backends. Every
// backend's tests call Run; each case runs in its own subtest on a fresh,
// empty store, and checks behaviour only through the store.Store interface
// (errors with errors.Is, never a type assertion to a backend).
//
// Where the doc comments in package store leave a detail open, the suite
// takes the reading they most support and says so next to the check:
//   - a stored conversation keeps its Members in the order they were given;
//   - times come back equal (time.Time.Equal) to nanosecond precision;
//   - meta comes back as equal JSON, not necessarily the same bytes;
//   - Conversations returns next == nil on the page that holds the last
//     entry, and otherwise the position of the page's last entry;
//   - within one user's stream, the updates of one conversation's messages
//     appear in seq order, and one reader's read updates rise;
//   - an update sets only the fields of its type ("exactly one of" in
//     chat.Update): a message update has no ConversationID of its own;
//   - moving the sender's read position in AppendMessage appends no "read"
//     update.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// Harness opens stores for the suite.
type Harness struct {
	// Open returns a fresh, empty store for one subtest. The suite closes
	// it exactly once when the subtest ends (or earlier, when the subtest is
	// about Close).
	Open func(t *testing.T) store.Store
	// Reopen closes s and opens the same data again. Nil for a backend that
	// does not persist: then the persistence cases are not run at all.
	Reopen func(t *testing.T, s store.Store) store.Store
}

type testCase struct {
	name string
	fn   func(e *env)
}

// Run runs the whole suite against the backend h opens.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is nil")
	}
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Apps", appCases},
		{"Conversations", conversationCases},
		{"Append", appendCases},
		{"Messages", messagesCases},
		{"Updates", updatesCases},
		{"MarkRead", markReadCases},
		{"Members", memberCases},
		{"List", listCases},
		{"Blocks", blockCases},
		{"Concurrent", concurrentCases},
		{"Closed", closedCases},
	}
	if h.Reopen != nil {
		groups = append(groups, struct {
			name  string
			cases []testCase
		}{"Persist", persistCases})
	}
	// The batch cases are for backends that have the optional interface:
	// one store opened up front tells.
	probe := h.Open(t)
	_, batches := probe.(store.BatchAppender)
	if err := probe.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if batches {
		cases := batchCases
		if h.Reopen != nil {
			cases = append(slices.Clip(cases), batchPersistCases...)
		}
		groups = append(groups, struct {
			name  string
			cases []testCase
		}{"AppendMessages", cases})
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) { c.fn(newEnv(t, h)) })
			}
		})
	}
}

// env is one subtest's store and the helpers that drive it.
type env struct {
	t      *testing.T
	h      Harness
	ctx    context.Context
	s      store.Store
	closed bool
	clock  time.Time
}

// base has a nanosecond part so that a backend that drops precision fails.
var base = time.Date(2025, 6, 1, 9, 30, 0, 123456789, time.UTC)

func newEnv(t *testing.T, h Harness) *env {
	e := &env{t: t, h: h, ctx: t.Context(), clock: base}
	e.s = h.Open(t)
	if e.s == nil {
		t.Fatal("Harness.Open returned nil")
	}
	t.Cleanup(func() {
		if !e.closed {
			if err := e.s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return e
}

// now returns a time later than every earlier call's.
func (e *env) now() time.Time {
	e.clock = e.clock.Add(time.Second + 7*time.Nanosecond)
	return e.clock
}

// close closes the store for a subtest about Close; cleanup won't again.
func (e *env) close() {
	e.t.Helper()
	e.closed = true
	if err := e.s.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
}

func (e *env) reopen() {
	e.t.Helper()
	e.s = e.h.Reopen(e.t, e.s)
	if e.s == nil {
		e.t.Fatal("Harness.Reopen returned nil")
	}
}

func addr(user string) chat.Address { return chat.NewAddress("app", user) }

func (e *env) createApp(id string, interop ...string) chat.App {
	e.t.Helper()
	if interop == nil {
		interop = []string{}
	}
	a := chat.App{ID: id, Name: "App " + id, Secret: "secret-" + id, Interop: interop, CreatedAt: e.now()}
	if err := e.s.CreateApp(e.ctx, a); err != nil {
		e.t.Fatalf("CreateApp(%s): %v", id, err)
	}
	return a
}

// group builds (does not store) a group conversation made by members[0].
func (e *env) group(id string, members ...chat.Address) chat.Conversation {
	now := e.now()
	return chat.Conversation{
		ID: id, Kind: chat.Group, Title: "title of " + id, Members: members,
		Creator: members[0], CreatedAt: now, UpdatedAt: now,
	}
}

// direct builds (does not store) the direct conversation of a and b.
func (e *env) direct(a, b chat.Address) chat.Conversation {
	now := e.now()
	return chat.Conversation{
		ID: chat.DirectID(a, b), Kind: chat.Direct, Members: []chat.Address{a, b},
		CreatedAt: now, UpdatedAt: now,
	}
}

// create stores c, which must be new.
func (e *env) create(c chat.Conversation) (chat.Conversation, []chat.Delivery) {
	e.t.Helper()
	got, ds, created, err := e.s.CreateConversation(e.ctx, c)
	if err != nil {
		e.t.Fatalf("CreateConversation(%s): %v", c.ID, err)
	}
	if !created {
		e.t.Fatalf("CreateConversation(%s): created = false for a new id", c.ID)
	}
	return got, ds
}

// newGroup stores a new group conversation.
func (e *env) newGroup(id string, members ...chat.Address) chat.Conversation {
	e.t.Helper()
	c, _ := e.create(e.group(id, members...))
	return c
}

func (e *env) msg(convID string, sender chat.Address, clientID, body string) chat.Message {
	return chat.Message{
		ConversationID: convID, Sender: sender, ClientID: clientID, Kind: chat.KindText,
		Body: body, Meta: json.RawMessage(`{"n":1,"tag":"` + clientID + `"}`), SentAt: e.now(),
	}
}

// send appends a new message and checks that it was created.
func (e *env) send(convID string, sender chat.Address, clientID, body string) store.Appended {
	e.t.Helper()
	res, err := e.s.AppendMessage(e.ctx, e.msg(convID, sender, clientID, body))
	if err != nil {
		e.t.Fatalf("AppendMessage(%s, %s, %s): %v", convID, sender, clientID, err)
	}
	if !res.Created {
		e.t.Fatalf("AppendMessage(%s, %s, %s): Created = false for a new client id", convID, sender, clientID)
	}
	return res
}

func (e *env) conv(id string) chat.Conversation {
	e.t.Helper()
	c, err := e.s.Conversation(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Conversation(%s): %v", id, err)
	}
	return c
}

func (e *env) messages(id string, before int64, limit int) []chat.Message {
	e.t.Helper()
	list, err := e.s.Messages(e.ctx, id, before, limit)
	if err != nil {
		e.t.Fatalf("Messages(%s, %d, %d): %v", id, before, limit, err)
	}
	return list
}

func (e *env) updatesAfter(user chat.Address, after int64, limit int) []chat.Update {
	e.t.Helper()
	list, err := e.s.Updates(e.ctx, user, after, limit)
	if err != nil {
		e.t.Fatalf("Updates(%s, %d, %d): %v", user, after, limit, err)
	}
	return list
}

// stream returns user's whole stream and checks its cursors are 1..n.
func (e *env) stream(user chat.Address) []chat.Update {
	e.t.Helper()
	var all []chat.Update
	for {
		page := e.updatesAfter(user, int64(len(all)), 100)
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			if u.Cursor != int64(len(all))+1 {
				e.t.Fatalf("stream of %s: cursor %d where %d was due", user, u.Cursor, len(all)+1)
			}
			all = append(all, u)
		}
	}
	return all
}

// summaries lists every conversation of user, walking all pages.
func (e *env) summaries(user chat.Address) []chat.Summary {
	e.t.Helper()
	var all []chat.Summary
	var page *store.Page
	for range 1000 {
		list, next, err := e.s.Conversations(e.ctx, user, page, 50)
		if err != nil {
			e.t.Fatalf("Conversations(%s): %v", user, err)
		}
		all = append(all, list...)
		if next == nil {
			return all
		}
		page = next
	}
	e.t.Fatalf("Conversations(%s): next never became nil", user)
	return nil
}

// summary returns user's summary of conversation id; ok is false when
// user's list does not hold it.
func (e *env) summary(user chat.Address, id string) (chat.Summary, bool) {
	e.t.Helper()
	for _, s := range e.summaries(user) {
		if s.ID == id {
			return s, true
		}
	}
	return chat.Summary{}, false
}

func (e *env) readSeq(user chat.Address, id string) int64 {
	e.t.Helper()
	s, ok := e.summary(user, id)
	if !ok {
		e.t.Fatalf("Conversations(%s) does not list %s", user, id)
	}
	return s.ReadSeq
}

// wantErr fails unless errors.Is(err, target).
func (e *env) wantErr(what string, err, target error) {
	e.t.Helper()
	if !errors.Is(err, target) {
		e.t.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

// wantEqual compares two values of the domain after normalising what the
// contract leaves free (time location, meta formatting, nil vs empty).
func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", what, show(g), show(w))
	}
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// normalize returns a comparable copy of a domain value (or slice or
// pointer of one). Unknown types are returned as they are.
func normalize(v any) any {
	switch x := v.(type) {
	case chat.App:
		return normApp(x)
	case []chat.App:
		return normSlice(x, normApp)
	case chat.Conversation:
		return normConv(x)
	case []chat.Conversation:
		return normSlice(x, normConv)
	case chat.Message:
		return normMsg(x)
	case *chat.Message:
		return normPtr(x, normMsg)
	case []chat.Message:
		return normSlice(x, normMsg)
	case chat.Update:
		return normUpdate(x)
	case []chat.Update:
		return normSlice(x, normUpdate)
	case chat.Summary:
		return normSummary(x)
	case []chat.Summary:
		return normSlice(x, normSummary)
	case store.Appended:
		x.Message = normMsg(x.Message)
		if len(x.Deliveries) == 0 {
			x.Deliveries = nil
		}
		return x
	case []chat.Delivery:
		if len(x) == 0 {
			return []chat.Delivery(nil)
		}
		return x
	case *store.Page:
		if x == nil {
			return x
		}
		p := *x
		p.UpdatedAt = p.UpdatedAt.UTC()
		return &p
	}
	return v
}

func normSlice[T any](list []T, f func(T) T) []T {
	if len(list) == 0 {
		return nil
	}
	out := make([]T, len(list))
	for i, x := range list {
		out[i] = f(x)
	}
	return out
}

func normPtr[T any](p *T, f func(T) T) *T {
	if p == nil {
		return nil
	}
	x := f(*p)
	return &x
}

func normApp(a chat.App) chat.App {
	a.CreatedAt = a.CreatedAt.UTC()
	if len(a.Interop) == 0 {
		a.Interop = nil
	}
	return a
}

func normConv(c chat.Conversation) chat.Conversation {
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	if len(c.Members) == 0 {
		c.Members = nil
	}
	return c
}

func normMsg(m chat.Message) chat.Message {
	m.SentAt = m.SentAt.UTC()
	m.Meta = normJSON(m.Meta)
	return m
}

// normJSON makes equal JSON equal bytes; a backend may store meta in a
// form that reorders keys or respaces it.
func normJSON(b json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}

func normUpdate(u chat.Update) chat.Update {
	u.Message = normPtr(u.Message, normMsg)
	u.Conversation = normPtr(u.Conversation, normConv)
	return u
}

func normSummary(s chat.Summary) chat.Summary {
	s.Conversation = normConv(s.Conversation)
	s.LastMessage = normPtr(s.LastMessage, normMsg)
	return s
}

// withSeq returns m as stored with seq.
func withSeq(m chat.Message, seq int64) chat.Message {
	m.Seq = seq
	return m
}

// deliveryMap turns deliveries into user -> cursor, failing on a user
// named twice.
func deliveryMap(t *testing.T, what string, ds []chat.Delivery) map[chat.Address]int64 {
	t.Helper()
	m := map[chat.Address]int64{}
	for _, d := range ds {
		if _, dup := m[d.User]; dup {
			t.Errorf("%s: deliveries name %s twice: %v", what, d.User, ds)
		}
		m[d.User] = d.Cursor
	}
	return m
}

// wantDeliveries checks that ds names exactly users, and that each named
// cursor holds an update equal to want (cursor aside) in that user's stream.
func (e *env) wantDeliveries(what string, ds []chat.Delivery, want chat.Update, users ...chat.Address) {
	e.t.Helper()
	m := deliveryMap(e.t, what, ds)
	got := make([]chat.Address, 0, len(m))
	for u := range m {
		got = append(got, u)
	}
	slices.Sort(got)
	users = slices.Clone(users)
	slices.Sort(users)
	if !slices.Equal(got, users) {
		e.t.Errorf("%s: deliveries go to %v, want %v", what, got, users)
	}
	for user, cursor := range m {
		list := e.updatesAfter(user, cursor-1, 1)
		if len(list) != 1 {
			e.t.Errorf("%s: %s's stream has no cursor %d", what, user, cursor)
			continue
		}
		w := want
		w.Cursor = cursor
		wantEqual(e.t, fmt.Sprintf("%s: %s's update at cursor %d", what, user, cursor), list[0], w)
	}
}

// wantUpdateShape checks that exactly the fields of u's type are set.
func wantUpdateShape(t *testing.T, u chat.Update) {
	t.Helper()
	switch u.Type {
	case chat.UpdateMessage:
		if u.Message == nil || u.Conversation != nil || u.ConversationID != "" || u.Reader != "" || u.Seq != 0 {
			t.Errorf("message update at cursor %d: want only Message set, got %s", u.Cursor, show(u))
		}
	case chat.UpdateRead:
		if u.Message != nil || u.Conversation != nil || u.ConversationID == "" || u.Reader == "" || u.Seq < 1 {
			t.Errorf("read update at cursor %d: want only ConversationID, Reader and Seq set, got %s", u.Cursor, show(u))
		}
	case chat.UpdateConversation:
		if u.Conversation == nil || u.Message != nil || u.ConversationID != "" || u.Reader != "" || u.Seq != 0 {
			t.Errorf("conversation update at cursor %d: want only Conversation set, got %s", u.Cursor, show(u))
		}
	default:
		t.Errorf("update at cursor %d has type %q", u.Cursor, u.Type)
	}
}

func msgUpdate(m chat.Message) chat.Update {
	return chat.Update{Type: chat.UpdateMessage, Message: &m}
}

func convUpdate(c chat.Conversation) chat.Update {
	return chat.Update{Type: chat.UpdateConversation, Conversation: &c}
}

func readUpdate(convID string, reader chat.Address, seq int64) chat.Update {
	return chat.Update{Type: chat.UpdateRead, ConversationID: convID, Reader: reader, Seq: seq}
}
