package storetest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
	"github.com/switchboard-chat/switchboard/internal/store/storetest"
)

// TestSuiteWithReopen runs the whole suite, persistence cases included,
// against a memstore whose data outlives each handle, so that the cases
// only run for persistent backends are themselves known to pass against a
// correct store.
func TestSuiteWithReopen(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store { return &handle{data: memstore.New()} },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			h := s.(*handle)
			if err := h.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return &handle{data: h.data}
		},
	})
}

// handle is one opening of shared data: closing it leaves the data for the
// next handle, like a file left on disk.
type handle struct {
	data *memstore.Store

	mu     sync.Mutex // guards closed
	closed bool
}

func (h *handle) check(op string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("handle: %s: %w", op, store.ErrClosed)
	}
	return nil
}

func (h *handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	return nil
}

func (h *handle) CreateApp(ctx context.Context, app chat.App) error {
	if err := h.check("create app"); err != nil {
		return err
	}
	return h.data.CreateApp(ctx, app)
}

func (h *handle) App(ctx context.Context, id string) (chat.App, error) {
	if err := h.check("app"); err != nil {
		return chat.App{}, err
	}
	return h.data.App(ctx, id)
}

func (h *handle) Apps(ctx context.Context) ([]chat.App, error) {
	if err := h.check("apps"); err != nil {
		return nil, err
	}
	return h.data.Apps(ctx)
}

func (h *handle) UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error) {
	if err := h.check("update app"); err != nil {
		return chat.App{}, err
	}
	return h.data.UpdateApp(ctx, id, fn)
}

func (h *handle) CreateConversation(ctx context.Context, c chat.Conversation) (chat.Conversation, []chat.Delivery, bool, error) {
	if err := h.check("create conversation"); err != nil {
		return chat.Conversation{}, nil, false, err
	}
	return h.data.CreateConversation(ctx, c)
}

func (h *handle) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	if err := h.check("conversation"); err != nil {
		return chat.Conversation{}, err
	}
	return h.data.Conversation(ctx, id)
}

func (h *handle) UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	if err := h.check("update members"); err != nil {
		return chat.Conversation{}, nil, err
	}
	return h.data.UpdateMembers(ctx, id, now, fn)
}

func (h *handle) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	if err := h.check("append"); err != nil {
		return store.Appended{}, err
	}
	return h.data.AppendMessage(ctx, m)
}

func (h *handle) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	if err := h.check("append messages"); err != nil {
		return nil, err
	}
	return h.data.AppendMessages(ctx, ms)
}

func (h *handle) Messages(ctx context.Context, id string, before int64, limit int) ([]chat.Message, error) {
	if err := h.check("messages"); err != nil {
		return nil, err
	}
	return h.data.Messages(ctx, id, before, limit)
}

func (h *handle) MarkRead(ctx context.Context, id string, reader chat.Address, seq int64) (int64, []chat.Delivery, error) {
	if err := h.check("mark read"); err != nil {
		return 0, nil, err
	}
	return h.data.MarkRead(ctx, id, reader, seq)
}

func (h *handle) Conversations(ctx context.Context, user chat.Address, page *store.Page, limit int) ([]chat.Summary, *store.Page, error) {
	if err := h.check("conversations"); err != nil {
		return nil, nil, err
	}
	return h.data.Conversations(ctx, user, page, limit)
}

func (h *handle) Updates(ctx context.Context, user chat.Address, after int64, limit int) ([]chat.Update, error) {
	if err := h.check("updates"); err != nil {
		return nil, err
	}
	return h.data.Updates(ctx, user, after, limit)
}

func (h *handle) Block(ctx context.Context, blocker, blocked chat.Address) error {
	if err := h.check("block"); err != nil {
		return err
	}
	return h.data.Block(ctx, blocker, blocked)
}

func (h *handle) Unblock(ctx context.Context, blocker, blocked chat.Address) error {
	if err := h.check("unblock"); err != nil {
		return err
	}
	return h.data.Unblock(ctx, blocker, blocked)
}

func (h *handle) Blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error) {
	if err := h.check("blocked"); err != nil {
		return false, err
	}
	return h.data.Blocked(ctx, blocker, blocked)
}

func (h *handle) Ping(ctx context.Context) error {
	if err := h.check("ping"); err != nil {
		return err
	}
	return h.data.Ping(ctx)
}
