package wirejson_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// sampleMessages are messages of every kind of content the encoders and
// decoders treat apart.
func sampleMessages() []chat.Message {
	at := time.Date(2026, 11, 27, 1, 2, 3, 4500, time.UTC)
	return []chat.Message{
		{ConversationID: "dabc", Seq: 7, Sender: "messenger:alice", ClientID: "c-1", Kind: "text", Body: "hi", Meta: json.RawMessage(`{}`), SentAt: at},
		{ConversationID: "g1", Seq: 1 << 40, Sender: "a:b", ClientID: "x", Kind: "text", Body: "quote \" slash \\ tab \t nl \n <b>&amp;", SentAt: at.Truncate(time.Second)},
		{ConversationID: "g1", Seq: 2, Sender: "a:b", ClientID: "x", Kind: "text", Body: "héllo \u2028 ✓", Meta: json.RawMessage(`{"k":[1,"<v>"]}`), SentAt: at},
		{ConversationID: "g1", Seq: 3, Sender: "a:b", ClientID: "x", Kind: "text", Body: "bad utf8 \xff", Meta: json.RawMessage(`{"k":"é"}`)},
		{ConversationID: "g1", Seq: -3, Sender: "a:b", ClientID: "x", Kind: "text"},
	}
}

func TestAppendMessageMatchesEncodingJSON(t *testing.T) {
	for _, m := range sampleMessages() {
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
	for _, s := range []string{"", "plain", `q"\`, "<&>", "é\u2028", "\x00\x1f", "\xff\xfe", "sixteen bytes ok", "seven b\"then sixteen", "0123456789abcde\\", "12345678\x7f123456\x1f", "abcdefg&", "<bcdefgh12345678", "12345678abcdefg>", "word one\"word two"} {
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

// Valid says what encoding/json's Valid says.
//
//	go test -run '^$' -fuzz FuzzValid -fuzztime 60s ./internal/wirejson/
func FuzzValid(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `[]`, `{"type":"send","ref":"r","conversation_id":"d1","client_id":"c","body":"hi","meta":{"k":[1,-2.5e+3,true,false,null,"\u00e9\n"]}}`,
		`{"a":}`, `{"a" 1}`, `{,}`, `[1,]`, `[1 2]`, `01`, `-`, `1.`, `.5`, `1e`, `1E+`, `"\x"`, `"\u12g4"`, "\"\x01\"", "\"\xff\"",
		`tru`, `nul`, `{"a":1}}`, `[[[[]]]]`, `{"a":{"b":[{"c":null}]}}`, "\t{ \"a\" :\n[ ] }\r", `"`, `"\`, `[`, `{"a":1,}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := wirejson.Valid(s), json.Valid([]byte(s)); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", s, got, want)
		}
	})
}

// Valid keeps encoding/json's limit of 10,000 levels of nesting.
func TestValidDepth(t *testing.T) {
	for _, depth := range []int{9999, 10000, 10001} {
		s := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		if got, want := wirejson.Valid(s), json.Valid([]byte(s)); got != want {
			t.Errorf("depth %d: Valid = %v, encoding/json says %v", depth, got, want)
		}
	}
}

// BenchmarkValid checks a client's send frame.
//
//	go test -run '^$' -bench Valid ./internal/wirejson/
func BenchmarkValid(b *testing.B) {
	s := `{"type":"send","ref":"r-17","conversation_id":"dkq3vbm2xw5yq7zr4t6u8p1n0ao","client_id":"bench-17-4711","body":"a message of a typical length, some sixty bytes or so......","meta":{"k":[1,2]}}`
	b.Run("wirejson", func(b *testing.B) {
		for b.Loop() {
			if !wirejson.Valid(s) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if !json.Valid([]byte(s)) {
				b.Fatal("invalid")
			}
		}
	})
}

// BenchmarkAppendMessage encodes a message as the server does in every
// update and ack frame.
//
//	go test -run '^$' -bench AppendMessage ./internal/wirejson/
func BenchmarkAppendMessage(b *testing.B) {
	m := chat.Message{ConversationID: "d26t6iujpmnwmgp2jdgh2a3vl", Seq: 5683, Sender: "bench-bc6b9a-a:u74",
		ClientID: "407a45e085b69dca92af8f07", Kind: "text", Body: "5683720 " + strings.Repeat("x", 56),
		Meta: json.RawMessage(`{}`), SentAt: time.Date(2026, 11, 27, 1, 2, 3, 4500, time.UTC)}
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf = wirejson.AppendMessage(buf[:0], &m)
	}
}

// PlainString reads plain strings in place and leaves any other value.
func TestPlainString(t *testing.T) {
	for _, c := range []struct {
		s    string
		i    int
		v    string
		end  int
		want bool
	}{
		{`{"a":"xyz","b":1}`, 5, "xyz", 10, true},
		{`""`, 0, "", 2, true},
		{`"a\"b"`, 0, "", 0, false},
		{`"é"`, 0, "", 0, false},
		{"\"tab\t\"", 0, "", 0, false},
		{`"open`, 0, "", 0, false},
		{`1`, 0, "", 0, false},
		{`"x"`, 3, "", 0, false},
	} {
		v, end, ok := wirejson.PlainString(c.s, c.i)
		if v != c.v || end != c.end || ok != c.want {
			t.Errorf("PlainString(%q, %d) = %q, %d, %v; want %q, %d, %v", c.s, c.i, v, end, ok, c.v, c.end, c.want)
		}
	}
}
