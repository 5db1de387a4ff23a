package messaging

import (
	"context"
	"time"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/deadline"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// Default deadlines of one store call and one bus publish from the Service.
const (
	DefaultStoreTimeout = 3 * time.Second
	DefaultBusTimeout   = 2 * time.Second
)

// timeoutStore gives every call a deadline (a coarse one, see package
// deadline: every message takes several), so that a store that hangs
// makes quick unavailable answers (storeErr maps DeadlineExceeded) instead
// of requests that hang with it. A write whose deadline passes may still
// commit; the client's retry with the same client id then gets the stored
// result, so nothing is doubled.
type timeoutStore struct {
	store.Store
	d time.Duration
}

func (t timeoutStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return deadline.WithTimeout(ctx, t.d)
}

func (t timeoutStore) CreateApp(ctx context.Context, app chat.App) error {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.CreateApp(ctx, app)
}

func (t timeoutStore) App(ctx context.Context, id string) (chat.App, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.App(ctx, id)
}

func (t timeoutStore) Apps(ctx context.Context) ([]chat.App, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Apps(ctx)
}

func (t timeoutStore) UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.UpdateApp(ctx, id, fn)
}

func (t timeoutStore) CreateConversation(ctx context.Context, c chat.Conversation) (chat.Conversation, []chat.Delivery, bool, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.CreateConversation(ctx, c)
}

func (t timeoutStore) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Conversation(ctx, id)
}

func (t timeoutStore) UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.UpdateMembers(ctx, id, now, fn)
}

func (t timeoutStore) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.AppendMessage(ctx, m)
}

func (t timeoutStore) Messages(ctx context.Context, conversationID string, before int64, limit int) ([]chat.Message, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Messages(ctx, conversationID, before, limit)
}

func (t timeoutStore) MarkRead(ctx context.Context, conversationID string, reader chat.Address, seq int64) (int64, []chat.Delivery, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.MarkRead(ctx, conversationID, reader, seq)
}

func (t timeoutStore) Conversations(ctx context.Context, user chat.Address, page *store.Page, limit int) ([]chat.Summary, *store.Page, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Conversations(ctx, user, page, limit)
}

func (t timeoutStore) Updates(ctx context.Context, user chat.Address, after int64, limit int) ([]chat.Update, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Updates(ctx, user, after, limit)
}

func (t timeoutStore) Block(ctx context.Context, blocker, blocked chat.Address) error {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Block(ctx, blocker, blocked)
}

func (t timeoutStore) Unblock(ctx context.Context, blocker, blocked chat.Address) error {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Unblock(ctx, blocker, blocked)
}

func (t timeoutStore) Blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Blocked(ctx, blocker, blocked)
}

func (t timeoutStore) Ping(ctx context.Context) error {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.Store.Ping(ctx)
}

// timeoutBus gives every publish a deadline.
type timeoutBus struct {
	bus.Bus
	d time.Duration
}

func (t timeoutBus) Publish(ctx context.Context, events ...bus.Event) error {
	ctx, cancel := deadline.WithTimeout(ctx, t.d)
	defer cancel()
	return t.Bus.Publish(ctx, events...)
}
