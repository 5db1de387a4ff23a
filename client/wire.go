package client

import (
	"encoding/json"
	"time"

	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// Frames are decoded without reflection (package wirejson): a stream
// decodes every update it receives, so this is the client's hot path.

// parseFrame decodes a frame from the server. s is the frame as one
// string, which the decoded strings share.
func parseFrame(s string) (f inFrame, err error) {
	ferr := wirejson.Fields(s, func(k, v string) bool {
		switch k {
		case "type":
			f.Type, err = wirejson.String(v)
		case "ref":
			f.Ref, err = wirejson.String(v)
		case "update":
			f.Update, err = parseUpdate(v)
		case "cursor":
			f.Cursor, err = wirejson.Int(v)
		case "message":
			f.Message, err = parseMessage(v)
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
		return err == nil
	})
	if err == nil {
		err = ferr
	}
	return f, err
}

func parseUpdate(s string) (*Update, error) {
	if s == "null" {
		return nil, nil
	}
	u := new(Update)
	var err error
	ferr := wirejson.Fields(s, func(k, v string) bool {
		switch k {
		case "cursor":
			u.Cursor, err = wirejson.Int(v)
		case "type":
			u.Type, err = wirejson.String(v)
		case "message":
			u.Message, err = parseMessage(v)
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
		return err == nil
	})
	if err == nil {
		err = ferr
	}
	return u, err
}

func parseMessage(s string) (*Message, error) {
	if s == "null" {
		return nil, nil
	}
	m := new(Message)
	var err error
	ferr := wirejson.Fields(s, func(k, v string) bool {
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
			var at string
			if at, err = wirejson.String(v); err == nil && at != "" {
				m.SentAt, err = time.Parse(time.RFC3339, at)
			}
		}
		return err == nil
	})
	if err == nil {
		err = ferr
	}
	return m, err
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
