// Package chat holds Switchboard's domain: apps, addresses, conversations,
// messages, the updates of a user's stream, and the error kinds that every
// layer shares. It does no I/O.
package chat

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"strings"
	"time"
)

// Limits of the v1 API.
const (
	MaxBodyBytes     = 4 << 10 // a message body, UTF-8
	MaxMetaBytes     = 1 << 10 // a message's meta object, encoded
	MaxClientIDBytes = 128
	MaxGroupMembers  = 256
	MaxTitleBytes    = 256
	MaxHistoryLimit  = 200
	DefaultHistory   = 50
	MaxSyncLimit     = 1000
	DefaultSyncLimit = 500
	MaxListLimit     = 200
	DefaultListLimit = 50
)

// App is a tenant: one product that plugs in.
type App struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Secret    string    `json:"secret,omitempty"`
	Interop   []string  `json:"interop"`
	CreatedAt time.Time `json:"created_at"`
	// Limits are the app's own; a zero field means the server's default.
	Limits Limits `json:"limits"`
	// Frozen: the operators stopped the app's traffic (503 unavailable).
	Frozen bool `json:"frozen"`
}

// Allows reports whether a's users may exchange messages with other's users
// as far as a is concerned. An app always allows itself.
func (a App) Allows(other string) bool {
	if other == a.ID {
		return true
	}
	for _, id := range a.Interop {
		if id == other {
			return true
		}
	}
	return false
}

// Public returns the app without its secret, for listings.
func (a App) Public() App {
	a.Secret = ""
	return a
}

// Kinds of conversation.
const (
	Direct = "direct"
	Group  = "group"
)

// Conversation is a direct (1:1) or group conversation.
type Conversation struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Members   []Address `json:"members"`
	Creator   Address   `json:"creator,omitempty"` // groups only
	LastSeq   int64     `json:"last_seq"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// HasMember reports whether a is a member of c.
func (c *Conversation) HasMember(a Address) bool {
	for _, m := range c.Members {
		if m == a {
			return true
		}
	}
	return false
}

// DirectID derives the id of the direct conversation between a and b, the
// same whichever of the two asks, so that two racing creates make one.
func DirectID(a, b Address) string {
	x, y := string(a), string(b)
	if y < x {
		x, y = y, x
	}
	sum := sha256.Sum256([]byte(x + "\x00" + y))
	return "d" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:15]))
}

// Message kinds.
const KindText = "text"

// Message is an event in a conversation, numbered by the conversation's seq.
type Message struct {
	ConversationID string          `json:"conversation_id"`
	Seq            int64           `json:"seq"`
	Sender         Address         `json:"sender"`
	ClientID       string          `json:"client_id"`
	Kind           string          `json:"kind"`
	Body           string          `json:"body"`
	Meta           json.RawMessage `json:"meta"`
	SentAt         time.Time       `json:"sent_at"`
}

// Update types.
const (
	UpdateMessage      = "message"
	UpdateRead         = "read"
	UpdateConversation = "conversation"
)

// Update is one entry of a user's own ordered stream. Exactly one of
// Message, the read fields, or Conversation is set, according to Type.
type Update struct {
	Cursor         int64         `json:"cursor"`
	Type           string        `json:"type"`
	Message        *Message      `json:"message,omitempty"`
	ConversationID string        `json:"conversation_id,omitempty"`
	Reader         Address       `json:"reader,omitempty"`
	Seq            int64         `json:"seq,omitempty"`
	Conversation   *Conversation `json:"conversation,omitempty"`
}

// Delivery names one user's copy of an update: the user and the cursor the
// update got in that user's stream.
type Delivery struct {
	User   Address
	Cursor int64
}

// Summary is a conversation as a member sees it in their list.
type Summary struct {
	Conversation
	ReadSeq     int64    `json:"read_seq"`
	LastMessage *Message `json:"last_message,omitempty"`
}
