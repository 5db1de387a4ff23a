package wirejson

import (
	"encoding/json"
	"errors"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// errUnusual is a message the fast path leaves to encoding/json.
var errUnusual = errors.New("wirejson: unusual message")

// DecodeMessage decodes the JSON object s into m (which should be zero)
// as json.Unmarshal does, and, for the objects that AppendMessage writes,
// without reflection. m's strings may share s's memory. Anything else (a
// key not among the message's, as written, or repeated; a value the fast
// decoders refuse) is decoded by encoding/json, so that the result and
// the errors are encoding/json's.
func DecodeMessage(s string, m *chat.Message) error {
	if err := decodeMessage(s, m); err == nil {
		return nil
	}
	*m = chat.Message{}
	return json.Unmarshal([]byte(s), m)
}

func decodeMessage(s string, m *chat.Message) error {
	var seen uint8
	end, err := Walk(s, 0, func(key string, at int) (int, error) {
		v, end, err := Value(s, at)
		if err != nil {
			return 0, err
		}
		var bit uint8
		switch key {
		case "conversation_id":
			bit, err = 1, decodeString(v, &m.ConversationID)
		case "seq":
			bit = 2
			m.Seq, err = Int(v)
		case "sender":
			bit, err = 4, decodeString(v, (*string)(&m.Sender))
		case "client_id":
			bit, err = 8, decodeString(v, &m.ClientID)
		case "kind":
			bit, err = 16, decodeString(v, &m.Kind)
		case "body":
			bit, err = 32, decodeString(v, &m.Body)
		case "meta":
			bit = 64
			switch {
			case v == "null":
				m.Meta = json.RawMessage("null") // as encoding/json gives it
			case Valid(v):
				m.Meta = json.RawMessage(v)
			default:
				err = ErrSyntax
			}
		case "sent_at":
			bit = 128
			err = m.SentAt.UnmarshalJSON([]byte(v))
		default:
			return 0, errUnusual
		}
		if err != nil || seen&bit != 0 {
			return 0, errUnusual
		}
		seen |= bit
		return end, nil
	})
	if err != nil || skipSpace(s, end) != len(s) {
		return errUnusual
	}
	return nil
}

func decodeString(v string, dst *string) (err error) {
	*dst, err = String(v)
	return err
}
