package ws

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseIn: the hand-written decoder of client frames reads every frame
// as encoding/json does, and fails where it fails, so that what the server
// acts on never depends on which of the two read the frame.
func FuzzParseIn(f *testing.F) {
	for _, s := range []string{
		`{"type":"send","ref":"r1","conversation_id":"dx","client_id":"c","body":"hi","meta":{"a":[1,{}]}}`,
		`{"type":"read","ref":"r2","conversation_id":"dx","seq":3}`,
		`{"type":"typing","conversation_id":"dx"}`, `{"type":"ping","ref":"r3"}`,
		`{"TYPE":"ping"}`, `{"type":1}`, `{"seq":1.5}`, `{"seq":"1"}`, `{"seq":-0}`, `{"seq":1e2}`,
		`{"type":null,"seq":null}`, `{"body":"\ud800"}`, `{"body":"\u00e9\n\"x\""}`, `{"type":"a","type":"b"}`,
		`{"meta": null }`, ` {"ref" : "x" } `, `{}`, `[]`, `null`, `"x"`, `{`, "\xff", `{"x":{"y":[1,2,{"z":null}]}}`,
		`{"seq":9223372036854775808}`, `{"seq":-9223372036854775808}`, `{"ſeq":1}`, `{"ref":"\/"}`,
		// As the Go client writes a send: read by position (parseSend).
		`{"type":"send","ref":"8f3a","conversation_id":"d1","client_id":"8f3a","body":"1764 xxxx"}`,
		`{"type":"send","ref":"","conversation_id":"","client_id":"","body":""}`,
		`{"type":"send","ref":"r","conversation_id":"d","client_id":"c","body":"b"} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := parseIn(data)
		var want inFrame
		werr := json.Unmarshal(data, &want)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("frame %q: parseIn error %v, encoding/json error %v", data, gerr, werr)
		}
		if werr != nil {
			return
		}
		if got.Type != want.Type || got.Ref != want.Ref || got.ConversationID != want.ConversationID ||
			got.ClientID != want.ClientID || got.Body != want.Body || got.Seq != want.Seq ||
			!bytes.Equal(got.Meta, want.Meta) {
			t.Fatalf("frame %q:\nparseIn       %+v\nencoding/json %+v", data, got, want)
		}
	})
}
