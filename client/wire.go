package client

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// Frames are decoded without reflection (package wirejson): a stream
// decodes every update it receives, so this is the client's hot path.

// parseFrame decodes a frame from the server. s may be the stream's read
// buffer, which the next frame overwrites: every string the frame keeps is
// copied through k. The update and message objects are decoded where they
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
			f.Ref, err = k.copied(wirejson.String(v))
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
// are shared: a map lookup costs less than the copy and its garbage.
type keeper struct {
	seen map[string]string
}

// maxShared bounds the strings a keeper shares; past it, it starts over.
const maxShared = 4096

// shared returns a copy of s, one it made before if s recurs.
func (k *keeper) shared(s string, err error) (string, error) {
	if err != nil || s == "" {
		return s, err
	}
	if c, ok := k.seen[s]; ok {
		return c, nil
	}
	if k.seen == nil || len(k.seen) >= maxShared {
		k.seen = make(map[string]string)
	}
	c := strings.Clone(s)
	k.seen[c] = c
	return c, nil
}

// copied returns a copy of s.
func (k *keeper) copied(s string, err error) (string, error) {
	return strings.Clone(s), err
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
			m.ClientID, err = k.copied(wirejson.String(v))
		case "kind":
			m.Kind, err = k.shared(wirejson.String(v))
		case "body":
			m.Body, err = k.copied(wirejson.String(v))
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
	return m, end, err
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
