package ws

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// The frames written by hand are those encode writes.
func TestHandWrittenFramesMatchEncode(t *testing.T) {
	m := chat.Message{ConversationID: "dx", Seq: 3, Sender: "a:b", ClientID: "c<1>", Kind: "text", Body: "hé \"x\"", Meta: json.RawMessage(`{"k":1}`), SentAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	for _, u := range []chat.Update{
		{Cursor: 9, Type: chat.UpdateMessage, Message: &m},
		{Cursor: 10, Type: chat.UpdateRead, ConversationID: "dx", Reader: "a:b", Seq: 3},
	} {
		want := string(encode(updateFrame{Type: "update", Update: &u}))
		if got := string(encodeUpdate(&u, nil)); got != want {
			t.Errorf("encodeUpdate:\n got %s\nwant %s", got, want)
		}
		if u.Message != nil {
			if got := string(encodeUpdate(&u, wirejson.AppendMessage(nil, &m))); got != want {
				t.Errorf("encodeUpdate with the message's JSON:\n got %s\nwant %s", got, want)
			}
		}
	}
	// A ref longer than the stack buffer the ack quotes it in, too.
	for _, ref := range []string{"r\"1", strings.Repeat("é", 100)} {
		want := string(encode(ackSendFrame{Type: "ack", Ref: ref, Message: &m, Cursor: 4}))
		if got := string(encodeAckSend(ref, &m, nil, 4)); got != want {
			t.Errorf("encodeAckSend:\n got %s\nwant %s", got, want)
		}
	}
}

// parseIn reads what encoding/json reads, errors included.
func TestParseInMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"type":"send","ref":"r1","conversation_id":"dx","client_id":"c1","body":"hi \u00e9\n","meta":{"a":[1]}}`,
		`{"type":"read","ref":"r2","conversation_id":"dx","seq":12}`,
		`{"type":"ping","ref":"p","extra":{"x":[true,null]}}`,
		`{"Type":"ping","REF":"p"}`,
		`{"type":"read","ref":"x3","seq":"three"}`,
		`{"type":"ping","x":tru}`,
		`{"type":"send","meta":null,"body":null}`,
		`not json`, `[1]`, `{}`,
	} {
		var want inFrame
		wantErr := json.Unmarshal([]byte(in), &want)
		got, err := parseIn([]byte(in))
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", in, got, err, want, wantErr)
		}
	}
}

// The Go client's send frames are read by position, as encoding/json reads
// them; others (escapes, a meta, another order) are left to the walk.
func TestParseSend(t *testing.T) {
	for _, s := range []string{
		`{"type":"send","ref":"8f3a","conversation_id":"d1","client_id":"8f3a","body":"1764 xxxx"}`,
		`{"type":"send","ref":"","conversation_id":"","client_id":"","body":""}`,
	} {
		got, ok := parseSend(s)
		var want inFrame
		if err := json.Unmarshal([]byte(s), &want); err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: by position %+v (%v), encoding/json %+v", s, got, ok, want)
		}
	}
	for _, s := range []string{
		`{"type":"send","ref":"r","conversation_id":"d","client_id":"c","body":"b","meta":{}}`,
		`{"type":"send","ref":"r","conversation_id":"d","client_id":"c","body":"\u00e9"}`,
		`{"type":"send","ref":"r","conversation_id":"d","client_id":"c","body":"é"}`,
		`{"type":"send","ref":"r","client_id":"c","conversation_id":"d","body":"b"}`,
		`{"type":"send","ref":"r","conversation_id":"d","client_id":"c","body":"b"} `,
		`{"type":"send","ref":"r","conversation_id":"d","client_id":"c","body":"b`,
	} {
		if _, ok := parseSend(s); ok {
			t.Errorf("%s: read by position; want it left to the walk", s)
		}
	}
}

// encodeAckSend is the JSON of the ack a session renders for a send (the
// sessions render it into their write batch; frame.appendTo).
func encodeAckSend(ref string, m *chat.Message, mj []byte, cursor int64) []byte {
	return payload(frame{b: messageJSON(m, mj), kind: ackOf, ref: ref, cursor: cursor})
}
