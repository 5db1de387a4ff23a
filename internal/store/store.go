// Package store defines where Switchboard keeps apps, conversations, messages
// and every user's stream, and what each backend must guarantee. Backends
// live in their own packages (memstore, pebblestore, ...); storetest holds the
// conformance suite that each of them passes.
//
// The store does no authorisation beyond membership: interop, blocks and
// limits are checked by the layer above (package messaging). It does the
// things that must be atomic: numbering messages and stream entries with no
// gaps, idempotent sends, and read positions that never move back.
package store

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound: the app or conversation does not exist, or the user named
	// is not a member of the conversation.
	ErrNotFound = errors.New("not found")
	// ErrConflict: an app with that id exists already.
	ErrConflict = errors.New("already exists")
	// ErrUnavailable: the backend cannot be reached now; the call may be
	// retried later. Nothing was written.
	ErrUnavailable = errors.New("store unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// Store is implemented by each backend. All methods may be called
// concurrently. Every write is durable (synced) before it returns nil; a
// write that returns an error has changed nothing.
type Store interface {
	// CreateApp stores a new app. ErrConflict if the id is taken.
	CreateApp(ctx context.Context, app chat.App) error
	// App returns one app, with its secret. ErrNotFound if unknown.
	App(ctx context.Context, id string) (chat.App, error)
	// Apps returns every app, with secrets, ordered by id.
	Apps(ctx context.Context) ([]chat.App, error)
	// UpdateApp applies fn to the stored app and stores the result
	// atomically. fn may be called more than once; if it returns an error,
	// nothing is stored and that error is returned. The id cannot change.
	UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error)

	// CreateConversation stores c (ID, Kind, Title, Members, Creator and
	// CreatedAt set by the caller; LastSeq is 0 and UpdatedAt = CreatedAt)
	// and appends a "conversation" update to each member's stream. If a
	// conversation with c.ID exists already it is returned unchanged with
	// created = false, and nothing is appended: this is what makes two racing
	// creates of one direct conversation make one.
	CreateConversation(ctx context.Context, c chat.Conversation) (conv chat.Conversation, deliveries []chat.Delivery, created bool, err error)
	// Conversation returns one conversation. ErrNotFound if unknown.
	Conversation(ctx context.Context, id string) (chat.Conversation, error)
	// UpdateMembers applies fn to the conversation atomically: fn sees the
	// current state and may change Members (and only Members); it may be
	// called more than once; its error aborts with nothing stored. Unless fn
	// leaves the member list as it was, the result is stored with UpdatedAt =
	// now and a "conversation" update is appended to the stream of every
	// member before and after. Members who leave keep their read position;
	// members who join start with read position 0.
	UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error)

	// AppendMessage stores m (ConversationID, Sender, ClientID, Kind, Body,
	// Meta and SentAt set by the caller) with the conversation's next seq,
	// appends a "message" update to every member's stream, sets the
	// conversation's LastSeq and UpdatedAt = m.SentAt, and moves the sender's
	// read position to the new seq. ErrNotFound if the conversation does not
	// exist or the sender is not a member. If the same (conversation, sender,
	// client id) was stored before, it returns that first result with
	// Created = false and stores nothing; the body of the repeat is ignored.
	AppendMessage(ctx context.Context, m chat.Message) (Appended, error)
	// Messages returns up to limit messages of a conversation with seq <
	// before (every seq when before <= 0), newest first. An unknown
	// conversation gives an empty list.
	Messages(ctx context.Context, conversationID string, before int64, limit int) ([]chat.Message, error)

	// MarkRead moves reader's read position in the conversation to seq if
	// that is further than where it stands, and then appends a "read" update
	// to every member's stream (the reader's own included, so that their
	// other devices learn it). It returns the read position after the call;
	// when the position does not move, nothing is appended and deliveries is
	// nil. ErrNotFound if the conversation does not exist or reader is not a
	// member. The caller checks that seq <= LastSeq.
	MarkRead(ctx context.Context, conversationID string, reader chat.Address, seq int64) (readSeq int64, deliveries []chat.Delivery, err error)

	// Conversations lists the conversations user is a member of, latest
	// activity (UpdatedAt, then ID) first, starting after the position page
	// (nil: from the top). next is nil when the list is exhausted.
	Conversations(ctx context.Context, user chat.Address, page *Page, limit int) (list []chat.Summary, next *Page, err error)

	// Updates returns up to limit entries of user's stream with cursor >
	// after, in cursor order. Cursors start at 1 and have no gaps.
	Updates(ctx context.Context, user chat.Address, after int64, limit int) ([]chat.Update, error)

	// Block records that blocker blocked blocked; idempotent.
	Block(ctx context.Context, blocker, blocked chat.Address) error
	// Unblock removes the record; no error when there is none.
	Unblock(ctx context.Context, blocker, blocked chat.Address) error
	// Blocked reports whether blocker has blocked blocked.
	Blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error)

	// Ping checks that the backend can serve.
	Ping(ctx context.Context) error
	// Close releases the store; calls after it return ErrClosed.
	Close() error
}

// BatchAppender is implemented by stores that can append several messages
// in one write. The Service uses it for a client's pipelined sends to one
// conversation, so that they share one commit; with a store that lacks it,
// the Service calls AppendMessage once per message.
type BatchAppender interface {
	// AppendMessages appends ms, which must all have the same
	// ConversationID and Sender, in order, as AppendMessage would one after
	// another, and makes them durable together. It returns one Appended per
	// message: a repeated client id (of an earlier call, or of an earlier
	// message of ms) answers that first result with Created = false, and the
	// new messages get consecutive seqs. ErrNotFound if the conversation
	// does not exist or the sender is not a member. On any error nothing is
	// stored. An empty ms stores nothing and returns nothing.
	AppendMessages(ctx context.Context, ms []chat.Message) ([]Appended, error)
}

// CheckBatch reports an error when ms is not what AppendMessages takes:
// messages of one sender to one conversation.
func CheckBatch(ms []chat.Message) error {
	for i, m := range ms {
		if m.ConversationID != ms[0].ConversationID || m.Sender != ms[0].Sender {
			return fmt.Errorf("append %d messages: message %d is to %s from %s, the first to %s from %s",
				len(ms), i, m.ConversationID, m.Sender, ms[0].ConversationID, ms[0].Sender)
		}
	}
	return nil
}

// Appended is the result of AppendMessage.
type Appended struct {
	Message chat.Message
	// Cursor is the sender's stream cursor for the message's update.
	Cursor int64
	// Deliveries has one entry per member (sender included) whose stream got
	// the update. Nil when Created is false.
	Deliveries []chat.Delivery
	// Created is false when the send repeated an earlier client id.
	Created bool
}

// Page is a position in a user's conversation list: the last entry of the
// page before.
type Page struct {
	UpdatedAt time.Time
	ID        string
}

// Token encodes the position as the API's opaque paging token.
func (p *Page) Token() string {
	if p == nil {
		return ""
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(p.UpdatedAt.UnixNano()))
	b = append(b, p.ID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadToken is returned by ParsePage for a token it did not make.
var ErrBadToken = errors.New("not a paging token from this server")

// ParsePage decodes a token made by Page.Token. The empty token is the top.
func ParsePage(token string) (*Page, error) {
	if token == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 9 || len(b) > 8+64 {
		return nil, ErrBadToken
	}
	id := string(b[8:])
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return nil, ErrBadToken
		}
	}
	return &Page{UpdatedAt: time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC(), ID: id}, nil
}

// Before reports whether a conversation with (updatedAt, id) comes after
// position p in list order, that is, belongs on a later page.
func (p *Page) Before(updatedAt time.Time, id string) bool {
	if p == nil {
		return true
	}
	if !updatedAt.Equal(p.UpdatedAt) {
		return updatedAt.Before(p.UpdatedAt)
	}
	return id < p.ID
}
