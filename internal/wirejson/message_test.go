package wirejson_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// sameDecode decodes s with DecodeMessage and with json.Unmarshal, and
// fails unless both give the same message and both succeed or both fail.
func sameDecode(t *testing.T, s string) (chat.Message, error) {
	t.Helper()
	var got, want chat.Message
	gerr := wirejson.DecodeMessage(s, &got)
	werr := json.Unmarshal([]byte(s), &want)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("DecodeMessage(%q): error %v; encoding/json: %v", s, gerr, werr)
	}
	// time.Time compares by instant and location; Equal for the instant.
	gt, wt := got.SentAt, want.SentAt
	got.SentAt, want.SentAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) || !gt.Equal(wt) || gt.Location().String() != wt.Location().String() {
		t.Fatalf("DecodeMessage(%q):\n got %#v %v\nwant %#v %v", s, got, gt, want, wt)
	}
	got.SentAt = gt
	return got, gerr
}

// What AppendMessage writes reads back as the message, as encoding/json
// reads it.
func TestDecodeMessageReadsAppendMessage(t *testing.T) {
	for _, m := range sampleMessages() {
		s := string(wirejson.AppendMessage(nil, &m))
		got, err := sameDecode(t, s)
		if err != nil || got.Seq != m.Seq || got.ClientID != m.ClientID || !got.SentAt.Equal(m.SentAt) {
			t.Errorf("DecodeMessage(%s) = %+v, %v", s, got, err)
		}
	}
}

// Inputs off the fast path give what encoding/json gives.
func TestDecodeMessageAsEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, `{"seq":null,"meta":null,"sent_at":null}`, `{"Seq":5}`, `{"seq":1,"seq":2}`, `{"seq":"5"}`, `{"seq":+1}`, `{"seq":01}`,
		`{"seq":1.0}`, `{"body":"\u00e9\n"}`, `{"meta":{"a":}}`, `{"meta": [1, 2] }`, `{"sent_at":"2026-11-27T01:02:03Z"}`,
		`{"sent_at":"2026-11-27T01:02:03.5+02:00"}`, `{"sent_at":"yesterday"}`, `{"other":1,"body":"x"}`, ` {"body":"x"} `,
		`{"body":"x"} junk`, `[1]`, `null`, `{"body":`,
	} {
		sameDecode(t, s)
	}
}

// DecodeMessage gives what encoding/json gives, whatever the input.
//
//	go test -run '^$' -fuzz FuzzDecodeMessage -fuzztime 60s ./internal/wirejson/
func FuzzDecodeMessage(f *testing.F) {
	at := time.Date(2026, 11, 27, 1, 2, 3, 4500, time.UTC)
	m := chat.Message{ConversationID: "dabc", Seq: 7, Sender: "messenger:alice", ClientID: "c-1", Kind: "text", Body: "hi", Meta: json.RawMessage(`{"k":[1,true]}`), SentAt: at}
	f.Add(string(wirejson.AppendMessage(nil, &m)))
	f.Add(`{"seq":1,"seq":2,"meta":null}`)
	f.Add(`{"sent_at":"2026-11-27T01:02:03.5+02:00","body":"\ud83d\ude00"}`)
	f.Fuzz(func(t *testing.T, s string) {
		sameDecode(t, s)
	})
}
