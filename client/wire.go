package client

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// Frames are decoded without reflection (package wirejson): a stream
// decodes every update it receives, so this is the client's hot path.

// parseFrame decodes a frame from the server. s is the frame as one
// string, which the decoded strings share. The update and message objects
// are decoded where they stand (wirejson.Walk), so each byte is scanned
// once.
func parseFrame(s string) (f inFrame, err error) {
	_, err = wirejson.Walk(s, 0, func(k string, at int) (end int, err error) {
		switch k {
		case "update":
			f.Update, end, err = parseUpdate(s, at)
			return end, err
		case "message":
			f.Message, end, err = parseMessage(s, at)
			return end, err
		}
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch k {
		case "type":
			f.Type, err = wirejson.String(v)
		case "ref":
			f.Ref, err = wirejson.String(v)
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
			f.ConversationID, err = wirejson.String(v)
		case "from":
			f.From, err = wirejson.String(v)
		}
		return end, err
	})
	return f, err
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
func parseUpdate(s string, at int) (*Update, int, error) {
	if null, end := isNull(s, at); null {
		return nil, end, nil
	}
	u := new(Update)
	end, err := wirejson.Walk(s, at, func(k string, at int) (end int, err error) {
		if k == "message" {
			u.Message, end, err = parseMessage(s, at)
			return end, err
		}
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch k {
		case "cursor":
			u.Cursor, err = wirejson.Int(v)
		case "type":
			u.Type, err = wirejson.String(v)
		case "conversation_id":
			u.ConversationID, err = wirejson.String(v)
		case "reader":
			u.Reader, err = wirejson.String(v)
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
func parseMessage(s string, at int) (*Message, int, error) {
	if null, end := isNull(s, at); null {
		return nil, end, nil
	}
	m := new(Message)
	end, err := wirejson.Walk(s, at, func(k string, at int) (int, error) {
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch k {
		case "conversation_id":
			m.ConversationID, err = wirejson.String(v)
		case "seq":
			m.Seq, err = wirejson.Int(v)
		case "sender":
			m.Sender, err = wirejson.String(v)
		case "client_id":
			m.ClientID, err = wirejson.String(v)
		case "kind":
			m.Kind, err = wirejson.String(v)
		case "body":
			m.Body, err = wirejson.String(v)
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
