// Package bus carries users' updates from the node that stored them to the
// nodes where those users have live sessions. The bus is best effort: a
// session that misses an update sees a gap in its cursors and backfills from
// the store, so a lost event never becomes a lost message.
package bus

import (
	"context"
	"errors"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// Event is one thing to push to one user's live sessions: either an update
// of their stream (stored, with its cursor) or an ephemeral typing notice.
type Event struct {
	User   chat.Address `json:"user"`
	Update *chat.Update `json:"update,omitempty"`
	Typing *Typing      `json:"typing,omitempty"`
	// MessageJSON optionally holds Update.Message encoded as JSON, shared
	// by every event of one publish, so that local sessions do not encode
	// the message once per recipient. Read-only; transports that
	// serialise events drop it, and a subscriber without it encodes the
	// message itself.
	MessageJSON []byte `json:"-"`
}

// Typing says that From is typing in a conversation. Never stored.
type Typing struct {
	ConversationID string       `json:"conversation_id"`
	From           chat.Address `json:"from"`
}

// ErrClosed is returned, wrapped, by Publish and Subscribe after Close.
var ErrClosed = errors.New("bus closed")

// Bus is implemented by each transport (localbus in process, natsbus across
// nodes). Methods may be called concurrently.
type Bus interface {
	// Publish hands events to every subscriber of each event's user,
	// on this node and others. It does not wait for delivery.
	Publish(ctx context.Context, events ...Event) error
	// Subscribe calls fn for every event published for user from now on,
	// in publication order per publisher, until cancel is called. fn must
	// not block: it runs on the bus's own goroutine.
	Subscribe(user chat.Address, fn func(Event)) (cancel func(), err error)
	// Close stops delivery; Publish and Subscribe fail with ErrClosed
	// after it.
	Close() error
}
