package client

import (
	"encoding/json"
	"strings"
	"time"
	"unsafe"

	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// Frames are decoded without reflection (package wirejson): a stream
// decodes every update it receives, so this is the client's hot path.

// parseFrame decodes a frame from the server. s may be the stream's read
// buffer, which the next frame overwrites: every string the frame keeps is
// copied through k, except Ref, which handle only looks up. The update and message objects are decoded where they
// stand (wirejson.Walk), so each byte is scanned once.
func parseFrame(s string, k *keeper) (f inFrame, err error) {
	_, err = wirejson.Walk(s, 0, func(key string, at int) (end int, err error) {
		switch key {
		case "update":
			f.Update, end, err = parseUpdate(s, at, k)
			return end, err
		case "message":
			f.Message, end, err = parseMessage(s, at, k)
			return end, err
		}
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch key {
		case "type":
			f.Type, err = k.shared(wirejson.String(v))
		case "ref":
			f.Ref, err = wirejson.String(v) // only looked up: not copied
		case "cursor":
			f.Cursor, err = wirejson.Int(v)
		case "read_seq":
			f.ReadSeq, err = wirejson.Int(v)
		case "error":
			if v != "null" {
				f.RawError = new(wireError)
				err = json.Unmarshal([]byte(v), f.RawError)
			}
		case "conversation_id":
			f.ConversationID, err = k.shared(wirejson.String(v))
		case "from":
			f.From, err = k.shared(wirejson.String(v))
		}
		return end, err
	})
	return f, err
}

// keeper copies the strings a decoded frame keeps out of the read buffer.
// Those that recur from frame to frame (types, conversation ids, senders)
// are shared, from a small cache indexed by a cheap hash: a comparison
// costs less than a map lookup, and much less than a copy and its garbage.
type keeper struct {
	recent [256]string
}

// shared returns a copy of s, one it made before if s recurs.
func (k *keeper) shared(s string, err error) (string, error) {
	if err != nil || s == "" {
		return s, err
	}
	// Length and the last two bytes: ids of one kind differ at the end.
	h := (len(s)*31 + int(s[len(s)-1])*7 + int(s[len(s)/2])) & (len(k.recent) - 1)
	if c := k.recent[h]; c == s {
		return c, nil
	}
	c := strings.Clone(s)
	k.recent[h] = c
	return c, nil
}

// copied returns copies of a and b, made in one allocation.
func (k *keeper) copied(a, b string) (string, string) {
	if len(a)+len(b) == 0 {
		return "", ""
	}
	buf := make([]byte, len(a)+len(b))
	copy(buf, a)
	copy(buf[len(a):], b)
	both := unsafe.String(&buf[0], len(buf)) // buf is not written again
	return both[:len(a)], both[len(a):]
}

// isNull reports whether the value at s[at] is null, and the index past it.
func isNull(s string, at int) (bool, int) {
	if strings.HasPrefix(s[at:], "null") {
		return true, at + len("null")
	}
	return false, at
}

// parseUpdate decodes the update object at s[at] and returns the index
// past it.
func parseUpdate(s string, at int, k *keeper) (*Update, int, error) {
	if null, end := isNull(s, at); null {
		return nil, end, nil
	}
	u := new(Update)
	end, err := wirejson.Walk(s, at, func(key string, at int) (end int, err error) {
		if key == "message" {
			u.Message, end, err = parseMessage(s, at, k)
			return end, err
		}
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch key {
		case "cursor":
			u.Cursor, err = wirejson.Int(v)
		case "type":
			u.Type, err = k.shared(wirejson.String(v))
		case "conversation_id":
			u.ConversationID, err = k.shared(wirejson.String(v))
		case "reader":
			u.Reader, err = k.shared(wirejson.String(v))
		case "seq":
			u.Seq, err = wirejson.Int(v)
		case "conversation":
			if v != "null" {
				u.Conversation = new(Conversation)
				err = json.Unmarshal([]byte(v), u.Conversation)
			}
		}
		return end, err
	})
	return u, end, err
}

// parseMessage decodes the message object at s[at] and returns the index
// past it.
func parseMessage(s string, at int, k *keeper) (*Message, int, error) {
	if null, end := isNull(s, at); null {
		return nil, end, nil
	}
	m := new(Message)
	end, err := wirejson.Walk(s, at, func(key string, at int) (int, error) {
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch key {
		case "conversation_id":
			m.ConversationID, err = k.shared(wirejson.String(v))
		case "seq":
			m.Seq, err = wirejson.Int(v)
		case "sender":
			m.Sender, err = k.shared(wirejson.String(v))
		case "client_id":
			m.ClientID, err = wirejson.String(v) // copied below
		case "kind":
			m.Kind, err = k.shared(wirejson.String(v))
		case "body":
			m.Body, err = wirejson.String(v) // copied below
		case "meta":
			m.Meta = json.RawMessage(v)
		case "sent_at":
			var t string
			if t, err = wirejson.String(v); err == nil && t != "" {
				m.SentAt, err = time.Parse(time.RFC3339, t)
			}
		}
		return end, err
	})
	m.ClientID, m.Body = k.copied(m.ClientID, m.Body)
	return m, end, err
}

// sendFrameSize is the size of the send frame of a message whose strings
// need no escapes; escapes grow it past that.
func sendFrameSize(ref, conversationID, clientID, body string, meta []byte) int {
	const fixed = len(`{"type":"send","ref":"","conversation_id":"","client_id":"","body":"","meta":}`)
	return fixed + len(ref) + len(conversationID) + len(clientID) + len(body) + len(meta)
}

// appendSendFrame appends the send frame of a message.
func appendSendFrame(dst []byte, ref, conversationID, clientID, body string, meta []byte) []byte {
	dst = append(dst, `{"type":"send","ref":`...)
	dst = wirejson.AppendString(dst, ref)
	dst = append(dst, `,"conversation_id":`...)
	dst = wirejson.AppendString(dst, conversationID)
	dst = append(dst, `,"client_id":`...)
	dst = wirejson.AppendString(dst, clientID)
	dst = append(dst, `,"body":`...)
	dst = wirejson.AppendString(dst, body)
	if meta != nil {
		dst = append(dst, `,"meta":`...)
		dst = append(dst, meta...)
	}
	return append(dst, '}')
}
