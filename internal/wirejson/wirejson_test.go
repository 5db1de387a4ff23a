package wirejson_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

func TestAppendMessageMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 1, 2, 3, 4500, time.UTC)
	for _, m := range []chat.Message{
		{ConversationID: "dabc", Seq: 7, Sender: "messenger:alice", ClientID: "c-1", Kind: "text", Body: "hi", Meta: json.RawMessage(`{}`), SentAt: at},
		{ConversationID: "g1", Seq: 1 << 40, Sender: "a:b", ClientID: "x", Kind: "text", Body: "quote \" slash \\ tab \t nl \n <b>&amp;", SentAt: at.Truncate(time.Second)},
		{ConversationID: "g1", Seq: 2, Sender: "a:b", ClientID: "x", Kind: "text", Body: "héllo \u2028 ✓", Meta: json.RawMessage(`{"k":[1,"<v>"]}`), SentAt: at},
		{ConversationID: "g1", Seq: 3, Sender: "a:b", ClientID: "x", Kind: "text", Body: "bad utf8 \xff", Meta: json.RawMessage(`{"k":"é"}`)},
	} {
		want, err := json.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		if got := wirejson.AppendMessage([]byte("prefix"), &m); string(got) != "prefix"+string(want) {
			t.Errorf("AppendMessage:\n got %s\nwant prefix%s", got, want)
		}
	}
}

func TestFields(t *testing.T) {
	in := ` { "type" : "update", "n":-12 ,"o":{"a":[1,{"b":"}]"}],"c":"\"{"}, "s":"a\"b\\", "t":true,"z":null } `
	var got [][2]string
	if err := wirejson.Fields(in, func(k, v string) bool {
		got = append(got, [2]string{k, v})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"type", `"update"`}, {"n", "-12"}, {"o", `{"a":[1,{"b":"}]"}],"c":"\"{"}`}, {"s", `"a\"b\\"`}, {"t", "true"}, {"z", "null"}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d: got %q, want %q", i, got[i], want[i])
		}
	}
	if s, err := wirejson.String(`"a\"b\\"`); err != nil || s != `a"b\` {
		t.Errorf("String = %q, %v", s, err)
	}
	if n, err := wirejson.Int("-12"); err != nil || n != -12 {
		t.Errorf("Int = %d, %v", n, err)
	}
	for _, bad := range []string{``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":"x}`, `{"a":{"b":1}`, `{"a":1 "b":2}`, `{"a":1,}`} {
		if err := wirejson.Fields(bad, func(string, string) bool { return true }); err == nil {
			t.Errorf("Fields(%q): no error", bad)
		}
	}
	for _, bad := range []string{`x`, `"a`, `1`, `"\x"`} {
		if _, err := wirejson.String(bad); err == nil {
			t.Errorf("String(%q): no error", bad)
		}
	}
}

// AppendString writes what json.Marshal writes, and String reads it back
// as json.Unmarshal does.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"\`, "<&>", "é\u2028", "\x00\x1f", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		got := wirejson.AppendString(nil, s)
		if string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
		var back string
		json.Unmarshal(want, &back)
		dec, err := wirejson.String(string(want))
		if err != nil || dec != back {
			t.Fatalf("String(%s) = %q, %v; want %q", want, dec, err, back)
		}
	})
}
