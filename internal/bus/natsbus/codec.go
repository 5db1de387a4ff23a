package natsbus

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// Events cross NATS as the JSON of bus.Event, as encoding/json writes and
// reads it, so that nodes of any version understand each other. Message
// updates, nearly all the traffic, are written and read without
// reflection: with encoding/json they were a fifth of a node's CPU in two
// nodes' pairs benchmark. The message's JSON that the publisher already
// holds (Event.MessageJSON) is written as it is, and a receiver keeps what
// it read as the event's MessageJSON, so that its sessions write it on
// without encoding the message again.

// appendEvent appends ev's JSON to dst, byte for byte what json.Marshal
// writes for it.
func appendEvent(dst []byte, ev *bus.Event) ([]byte, error) {
	u := ev.Update
	if u == nil || ev.Typing != nil || u.Type != chat.UpdateMessage || u.Message == nil ||
		u.ConversationID != "" || u.Reader != "" || u.Seq != 0 || u.Conversation != nil {
		b, err := json.Marshal(ev)
		return append(dst, b...), err
	}
	dst = append(dst, `{"user":`...)
	dst = wirejson.AppendString(dst, string(ev.User))
	dst = append(dst, `,"update":{"cursor":`...)
	dst = strconv.AppendInt(dst, u.Cursor, 10)
	dst = append(dst, `,"type":`...)
	dst = wirejson.AppendString(dst, u.Type)
	dst = append(dst, `,"message":`...)
	if ev.MessageJSON != nil {
		dst = append(dst, ev.MessageJSON...)
	} else {
		dst = wirejson.AppendMessage(dst, u.Message)
	}
	return append(dst, `}}`...), nil
}

// errUnusual is an event the fast path leaves to encoding/json.
var errUnusual = errors.New("natsbus: unusual event")

// decodeEvent reads an event as json.Unmarshal does; a message update as
// appendEvent writes it goes without reflection, and keeps the message's
// JSON as the event's MessageJSON.
func decodeEvent(data []byte, ev *bus.Event) error {
	if err := decodeMessageEvent(string(data), ev); err == nil {
		return nil
	}
	*ev = bus.Event{}
	return json.Unmarshal(data, ev)
}

func decodeMessageEvent(s string, ev *bus.Event) error {
	var u chat.Update
	var msgJSON string
	var seen uint8
	end, err := wirejson.Walk(s, 0, func(key string, at int) (int, error) {
		switch {
		case key == "user" && seen&1 == 0:
			seen |= 1
			v, end, err := wirejson.Value(s, at)
			if err != nil {
				return 0, err
			}
			a, err := wirejson.String(v)
			ev.User = chat.Address(a)
			return end, err
		case key == "update" && seen&2 == 0:
			seen |= 2
			return wirejson.Walk(s, at, func(key string, at int) (int, error) {
				v, end, err := wirejson.Value(s, at)
				if err != nil {
					return 0, err
				}
				switch {
				case key == "cursor" && seen&4 == 0:
					seen |= 4
					u.Cursor, err = wirejson.Int(v)
				case key == "type" && seen&8 == 0:
					seen |= 8
					u.Type, err = wirejson.String(v)
				case key == "message" && seen&16 == 0 && v != "null":
					seen |= 16
					msgJSON = v
				default:
					return 0, errUnusual
				}
				return end, err
			})
		}
		return 0, errUnusual
	})
	if err != nil || seen != 31 || u.Type != chat.UpdateMessage || end != len(s) {
		return errUnusual
	}
	m := new(chat.Message)
	if err := wirejson.DecodeMessage(msgJSON, m); err != nil {
		return err
	}
	u.Message = m
	ev.Update = &u
	ev.MessageJSON = []byte(msgJSON)
	return nil
}
