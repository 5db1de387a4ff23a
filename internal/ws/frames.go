package ws

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
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

// The frames of the hot path are written by hand (package wirejson), byte
// for byte what encode writes for them.

// parseIn decodes a client frame. Only the common case is decoded here:
// a frame that is not valid JSON, has a field of the wrong type or a key
// that encoding/json would match only ignoring case, goes to
// encoding/json, whose errors the client then sees.
func parseIn(data []byte) (inFrame, error) {
	var f inFrame
	if s := string(data); wirejson.Valid(s) {
		var err error
		fallback := false
		perr := wirejson.Fields(s, func(k, v string) bool {
			switch k {
			case "type":
				f.Type, err = wirejson.String(v)
			case "ref":
				f.Ref, err = wirejson.String(v)
			case "conversation_id":
				f.ConversationID, err = wirejson.String(v)
			case "client_id":
				f.ClientID, err = wirejson.String(v)
			case "body":
				f.Body, err = wirejson.String(v)
			case "meta":
				f.Meta = json.RawMessage(v)
			case "seq":
				f.Seq, err = wirejson.Int(v)
			default:
				fallback = foldsToField(k)
			}
			return err == nil && !fallback
		})
		if err == nil && perr == nil && !fallback {
			return f, nil
		}
	}
	f = inFrame{}
	err := json.Unmarshal(data, &f)
	return f, err
}

var inFields = []string{"type", "ref", "conversation_id", "client_id", "body", "meta", "seq"}

// foldsToField reports whether encoding/json would take key for a field of
// inFrame.
func foldsToField(key string) bool {
	for _, f := range inFields {
		if strings.EqualFold(key, f) {
			return true
		}
	}
	return false
}

// messageJSON returns the message's JSON: mj when the publisher gave it.
func messageJSON(m *chat.Message, mj []byte) []byte {
	if mj != nil {
		return mj
	}
	return wirejson.AppendMessage(nil, m)
}

// encodeUpdate encodes the update frame of u; mj is u.Message's JSON, or
// nil.
func encodeUpdate(u *chat.Update, mj []byte) []byte {
	if u.Type != chat.UpdateMessage || u.Message == nil || u.ConversationID != "" || u.Reader != "" || u.Seq != 0 || u.Conversation != nil {
		return encode(updateFrame{Type: "update", Update: u})
	}
	if mj == nil {
		mj = wirejson.AppendMessage(make([]byte, 0, 256+len(u.Message.Body)), u.Message)
	}
	const head, mid, tail = `{"type":"update","update":{"cursor":`, `,"type":"message","message":`, "}}"
	b := make([]byte, 0, len(head)+20+len(mid)+len(mj)+len(tail)) // 20: the cursor's digits at most
	b = append(b, head...)
	b = strconv.AppendInt(b, u.Cursor, 10)
	b = append(b, mid...)
	b = append(b, mj...)
	return append(b, tail...)
}

// encodeAckSend encodes the ack of a send; mj is the message's JSON.
func encodeAckSend(ref string, m *chat.Message, mj []byte, cursor int64) []byte {
	mj = messageJSON(m, mj)
	const head, mid, cur, tail = `{"type":"ack","ref":`, `,"message":`, `,"cursor":`, "}"
	// 2 for the ref's quotes (escapes are rare), 20 for the cursor's digits.
	b := make([]byte, 0, len(head)+2+len(ref)+len(mid)+len(mj)+len(cur)+20+len(tail))
	b = append(b, head...)
	b = wirejson.AppendString(b, ref)
	b = append(b, mid...)
	b = append(b, mj...)
	b = append(b, cur...)
	b = strconv.AppendInt(b, cursor, 10)
	return append(b, tail...)
}
