package natsbus

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

func codecEvents() []bus.Event {
	at := time.Date(2026, 11, 27, 1, 2, 3, 4500, time.UTC)
	m := &chat.Message{ConversationID: "dabc", Seq: 7, Sender: "messenger:alice", ClientID: "c-1", Kind: chat.KindText,
		Body: "hi <b>\"there\"</b> ✓", Meta: json.RawMessage(`{"k":[1,true]}`), SentAt: at}
	plain := &chat.Message{ConversationID: "g1", Seq: 1 << 40, Sender: "a:b", ClientID: "x", Kind: chat.KindText, Body: "no meta", SentAt: at}
	return []bus.Event{
		{User: "instagram:bob", Update: &chat.Update{Cursor: 12, Type: chat.UpdateMessage, Message: m}},
		{User: "instagram:bob", Update: &chat.Update{Cursor: 12, Type: chat.UpdateMessage, Message: m}, MessageJSON: wirejson.AppendMessage(nil, m)},
		{User: "a:\"quoted\"", Update: &chat.Update{Cursor: 1, Type: chat.UpdateMessage, Message: plain}},
		{User: "a:b", Update: &chat.Update{Cursor: 3, Type: chat.UpdateRead, ConversationID: "g1", Reader: "a:c", Seq: 2}},
		{User: "a:b", Update: &chat.Update{Cursor: 4, Type: chat.UpdateConversation, Conversation: &chat.Conversation{ID: "g1", Kind: "group", Members: []chat.Address{"a:b", "a:c"}}}},
		{User: "a:b", Typing: &bus.Typing{ConversationID: "g1", From: "a:c"}},
	}
}

// appendEvent writes what json.Marshal writes, and decodeEvent reads it
// back as json.Unmarshal does, keeping a message's JSON as MessageJSON.
func TestCodecAsEncodingJSON(t *testing.T) {
	for i, ev := range codecEvents() {
		want, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEvent([]byte("x"), &ev)
		if err != nil || string(got) != "x"+string(want) {
			t.Errorf("event %d: appendEvent:\n got %s, %v\nwant x%s", i, got, err, want)
		}
		back := sameEvent(t, want)
		if m := back.Update; m != nil && m.Type == chat.UpdateMessage && string(back.MessageJSON) != string(wirejson.AppendMessage(nil, m.Message)) {
			t.Errorf("event %d: MessageJSON %s", i, back.MessageJSON)
		}
	}
}

// sameEvent decodes data with decodeEvent and with json.Unmarshal and
// fails unless both agree. A MessageJSON must decode to the message.
func sameEvent(t *testing.T, data []byte) bus.Event {
	t.Helper()
	var got, want bus.Event
	gerr := decodeEvent(data, &got)
	werr := json.Unmarshal(data, &want)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("decodeEvent(%q): error %v; encoding/json: %v", data, gerr, werr)
	}
	if got.MessageJSON != nil {
		var m chat.Message
		if got.Update == nil || json.Unmarshal(got.MessageJSON, &m) != nil || !sameMessage(&m, got.Update.Message) {
			t.Fatalf("decodeEvent(%q): MessageJSON %q is not the message", data, got.MessageJSON)
		}
	}
	// Compared without the messages (times compare as instants) and
	// MessageJSON, on copies: got goes back whole.
	g, w := got, want
	gm, wm := message(g), message(w)
	g.MessageJSON, w.MessageJSON = nil, nil
	if gm != nil || wm != nil {
		if gm == nil || wm == nil || !sameMessage(gm, wm) {
			t.Fatalf("decodeEvent(%q): message %#v, encoding/json %#v", data, gm, wm)
		}
		gu, wu := *g.Update, *w.Update
		gu.Message, wu.Message = nil, nil
		g.Update, w.Update = &gu, &wu
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("decodeEvent(%q):\n got %#v\nwant %#v", data, g, w)
	}
	return got
}

func message(ev bus.Event) *chat.Message {
	if ev.Update == nil {
		return nil
	}
	return ev.Update.Message
}

// sameMessage compares messages, their times as instants in the same
// location.
func sameMessage(a, b *chat.Message) bool {
	x, y := *a, *b
	x.SentAt, y.SentAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y) && a.SentAt.Equal(b.SentAt) && a.SentAt.Location().String() == b.SentAt.Location().String()
}

// decodeEvent gives what encoding/json gives, whatever NATS delivers.
//
//	go test -run '^$' -fuzz FuzzDecodeEvent -fuzztime 60s ./internal/bus/natsbus/
func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range codecEvents() {
		b, _ := json.Marshal(&ev)
		f.Add(b)
	}
	f.Add([]byte(`{"update":{"type":"message","cursor":1,"message":null},"user":"a:b"}`))
	f.Add([]byte(`{"user":"a:b","update":{"cursor":1,"type":"message","message":{"seq":1},"seq":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameEvent(t, data)
	})
}
