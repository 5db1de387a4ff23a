package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// FuzzSendBodyDecoders: the send body's one-scan decoder takes only what encoding/json (with
// DisallowUnknownFields, as decodeBody runs it) takes, and decodes it to
// the same values; whatever it declines goes to encoding/json.
func FuzzSendBodyDecoders(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"c-1","body":"hello"}`,
		`{"client_id":"c-1","body":"hello","meta":{"lang":"en"}}`,
		` {"body":"\u00e9t\u00e9 \ud83d\ude00 <b>&amp;</b>\n","client_id":"x"} `,
		`{"client_id":null,"body":null,"meta":null}`,
		`{"client_id":"a","client_id":"b","body":"dup"}`,
		`{"Client_ID":"folded","body":"x"}`,
		`{"client_id":1,"body":"x"}`,
		`{"client_id":"c","body":"x","extra":true}`,
		`{"client_id":"c","body":"bad \ud800 surrogate"}`,
		`{"body":"x"} {"body":"y"}`,
		`{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || !wirejson.Valid(s) {
			return // decodeBody refuses these before decoding
		}
		var fast sendBody
		if !fast.decodeWire(s) {
			if fast.ClientID != "" || fast.Body != "" || fast.Meta != nil {
				t.Fatalf("declined %q but left %+v", s, fast)
			}
			return
		}
		var std sendBody
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("decodeWire took %q, which encoding/json refuses: %v", s, err)
		}
		if fast.ClientID != std.ClientID || fast.Body != std.Body || !bytes.Equal(fast.Meta, std.Meta) {
			t.Fatalf("%q: decodeWire %+v, encoding/json %+v", s, fast, std)
		}
	})
}

// BenchmarkDecodeSendBody compares the two decoders on a typical send.
func BenchmarkDecodeSendBody(b *testing.B) {
	body := []byte(`{"client_id":"c-123456","body":"message number 123456 from the benchmark","meta":{"lang":"en"}}`)
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v sendBody
			if s := string(body); !wirejson.Valid(s) || !v.decodeWire(s) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v sendBody
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
