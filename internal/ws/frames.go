package ws

import (
	"encoding/json"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// inFrame is any frame a client sends; Type says which fields matter.
type inFrame struct {
	Type           string          `json:"type"`
	Ref            string          `json:"ref"`
	ConversationID string          `json:"conversation_id"`
	ClientID       string          `json:"client_id"`
	Body           string          `json:"body"`
	Meta           json.RawMessage `json:"meta"`
	Seq            int64           `json:"seq"`
}

// Frames the server sends.

type updateFrame struct {
	Type   string       `json:"type"` // "update"
	Update *chat.Update `json:"update"`
}

type readyFrame struct {
	Type   string `json:"type"` // "ready"
	Cursor int64  `json:"cursor"`
}

type ackSendFrame struct {
	Type    string        `json:"type"` // "ack"
	Ref     string        `json:"ref"`
	Message *chat.Message `json:"message"`
	Cursor  int64         `json:"cursor"`
}

type ackReadFrame struct {
	Type    string `json:"type"` // "ack"
	Ref     string `json:"ref"`
	ReadSeq int64  `json:"read_seq"`
}

type errorFrame struct {
	Type  string      `json:"type"` // "error"
	Ref   string      `json:"ref,omitempty"`
	Error *chat.Error `json:"error"`
}

type typingFrame struct {
	Type           string       `json:"type"` // "typing"
	ConversationID string       `json:"conversation_id"`
	From           chat.Address `json:"from"`
}

type pongFrame struct {
	Type string `json:"type"` // "pong"
	Ref  string `json:"ref,omitempty"`
}

// badFrame stands in for a frame that failed to encode, which only data
// the store returned corrupt can cause.
var badFrame = []byte(`{"type":"error","error":{"code":"internal","message":"the server could not encode a frame"}}`)

// encode marshals a frame.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return badFrame
	}
	return b
}
