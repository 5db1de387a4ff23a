package ws

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
	"github.com/switchboard-chat/switchboard/internal/wsframe"
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
	s := string(data)
	if f, ok := parseSend(s); ok {
		return f, nil
	}
	var f inFrame
	if wirejson.Valid(s) {
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

// parseSend reads a send frame laid out as the Go client writes it (type,
// ref, conversation_id, client_id and body, each string without escapes
// or non-ASCII, no meta), a session's most common frame, by position:
// without the validity scan, the walk, and a second scan of each string.
// ok is false for anything else, which parseIn walks.
func parseSend(s string) (f inFrame, ok bool) {
	const head = `{"type":"send","ref":`
	if !strings.HasPrefix(s, head) {
		return inFrame{}, false
	}
	i := len(head)
	// str reads a plain string (wirejson.PlainString), which next follows.
	str := func(next string) (string, bool) {
		v, end, ok := wirejson.PlainString(s, i)
		if !ok || !strings.HasPrefix(s[end:], next) {
			return "", false
		}
		i = end + len(next)
		return v, true
	}
	f.Type = "send"
	if f.Ref, ok = str(`,"conversation_id":`); !ok {
		return inFrame{}, false
	}
	if f.ConversationID, ok = str(`,"client_id":`); !ok {
		return inFrame{}, false
	}
	if f.ClientID, ok = str(`,"body":`); !ok {
		return inFrame{}, false
	}
	if f.Body, ok = str(`}`); !ok || i != len(s) {
		return inFrame{}, false
	}
	return f, true
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

// A frame is one frame of a session's queue: encoded, or a message's
// update or a send's ack, kept as the message's JSON and rendered into the
// write batch when written (conn.writeLoop). One message's JSON is shared
// by its ack and by the update of each member's session, so it is copied
// once per socket, into the batch, and no frame is allocated.
type frame struct {
	b      []byte // the frame's JSON, or the message's (kind says)
	kind   frameKind
	ref    string // the send's ref, for an ack
	cursor int64  // an update's cursor (encoded or not), or the ack's
}

type frameKind uint8

const (
	encoded     frameKind = iota // b is the frame
	updateOf                     // b is a message; the frame its update
	ackOf                        // b is a message; the frame the ack of its send
	ackUpdateOf                  // the ack, standing in for the update (mergeAcks)
)

// The fixed parts of the frames rendered from a message's JSON.
var (
	updHead = []byte(`{"type":"update","update":{"cursor":`)
	updMid  = []byte(`,"type":"message","message":`)
	updTail = []byte("}}")
	ackHead = []byte(`{"type":"ack","ref":`)
	ackMid  = []byte(`,"message":`)
	ackCur  = []byte(`,"cursor":`)
	ackTail = []byte("}")
	// An ack that stands in for its message's update says so.
	ackInStreamTail = []byte(`,"in_stream":true}`)
)

// messageFrame is the update frame of u, kept unrendered when it is a
// message's and its JSON mj is given.
func messageFrame(u *chat.Update, mj []byte) frame {
	if mj == nil || !plainMessage(u) {
		return frame{b: encodeUpdate(u, mj), cursor: u.Cursor}
	}
	return frame{b: mj, kind: updateOf, cursor: u.Cursor}
}

// plainMessage reports whether u is a message's update and nothing else.
func plainMessage(u *chat.Update) bool {
	return u.Type == chat.UpdateMessage && u.Message != nil && u.ConversationID == "" && u.Reader == "" && u.Seq == 0 && u.Conversation == nil
}

// size is about the bytes f takes in the queue.
func (f *frame) size() int {
	if f.kind == encoded {
		return len(f.b)
	}
	return len(f.b) + len(f.ref) + 80
}

// appendTo appends f as one WebSocket text frame.
func (f *frame) appendTo(dst []byte) []byte {
	if f.kind == encoded {
		return wsframe.AppendText(dst, f.b)
	}
	var num [20]byte
	cur := strconv.AppendInt(num[:0], f.cursor, 10)
	if f.kind == updateOf {
		return wsframe.AppendText(dst, updHead, cur, updMid, f.b, updTail)
	}
	var qb [64]byte // most refs fit; a longer one grows onto the heap
	ref := wirejson.AppendString(qb[:0], f.ref)
	tail := ackTail
	if f.kind == ackUpdateOf {
		tail = ackInStreamTail
	}
	return wsframe.AppendText(dst, ackHead, ref, ackMid, f.b, ackCur, cur, tail)
}

// encodeUpdate encodes the update frame of u; mj is u.Message's JSON, or
// nil.
func encodeUpdate(u *chat.Update, mj []byte) []byte {
	if !plainMessage(u) {
		return encode(updateFrame{Type: "update", Update: u})
	}
	if mj == nil {
		mj = wirejson.AppendMessage(make([]byte, 0, 256+len(u.Message.Body)), u.Message)
	}
	return payload(frame{b: mj, kind: updateOf, cursor: u.Cursor})
}

// payload is the JSON f renders: its WebSocket frame less the header.
func payload(f frame) []byte {
	return wsframe.Payload(f.appendTo(nil))
}
