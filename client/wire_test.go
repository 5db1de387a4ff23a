package client

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// The frames the server sends, as seeds; testdata/fuzz/FuzzParseFrame
// keeps inputs the fuzzer found.
var wireSeeds = []string{
	`{"type":"ready","cursor":7}`,
	`{"type":"update","update":{"cursor":3,"type":"message","message":{"conversation_id":"d1","seq":2,"sender":"a:bob","client_id":"c1","kind":"text","body":"hi","meta":{"k":[1,{"x":"}"}]},"sent_at":"2026-11-27T08:00:00.123Z"}}}`,
	`{"type":"update","update":{"cursor":4,"type":"read","conversation_id":"d1","reader":"b:al","seq":2}}`,
	`{"type":"update","update":{"cursor":5,"type":"conversation","conversation":{"id":"g1","kind":"group","members":["a:x","b:y"]}}}`,
	`{"type":"ack","ref":"r1","message":{"conversation_id":"d1","seq":9,"sender":"a:bob","client_id":"c\"q","kind":"text","body":"h\u00e9","sent_at":"2026-11-27T08:00:00Z"},"cursor":11}`,
	`{"type":"ack","ref":"r2","read_seq":4}`,
	`{"type":"error","ref":"r3","error":{"code":"not_found","message":"no such conversation"}}`,
	`{"type":"typing","conversation_id":"d1","from":"a:bob"}`,
	`{"type":"update","update":null,"message":null}`,
	` { "type" : "pong" , "ref" : "p" } `,
}

// TestParseFrameSeeds checks the hand-written decoder against
// encoding/json on the frames the server sends.
func TestParseFrameSeeds(t *testing.T) {
	for _, s := range wireSeeds {
		got, err := parseFrame(s, new(keeper))
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		var want inFrame
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("%s: encoding/json: %v", s, err)
		}
		if !sameFrame(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", s, got, want)
		}
	}
}

// A decoded frame keeps nothing of the buffer it was read into, which the
// stream reuses for the next frame, but its ref; strings seen before are
// shared.
func TestParseFrameCopiesOutOfTheBuffer(t *testing.T) {
	k := new(keeper)
	for _, s := range wireSeeds {
		buf := []byte(s)
		got, err := parseFrame(unsafe.String(unsafe.SliceData(buf), len(buf)), k)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		for i := range buf {
			buf[i] = 'x'
		}
		want, _ := parseFrame(s, new(keeper))
		got.Ref, want.Ref = "", "" // looked up at once, never kept
		if !sameFrame(got, want) {
			t.Errorf("%s: after the buffer was overwritten:\n got %+v\nwant %+v", s, got, want)
		}
	}
	a, _ := parseFrame(wireSeeds[1], k)
	b, _ := parseFrame(strings.Clone(wireSeeds[1]), k)
	if unsafe.StringData(a.Update.Message.Sender) != unsafe.StringData(b.Update.Message.Sender) {
		t.Error("the sender of two frames is two copies, want one shared")
	}
	if unsafe.StringData(a.Update.Message.Body) == unsafe.StringData(b.Update.Message.Body) {
		t.Error("the body of two frames is shared, want a copy each")
	}
}

// FuzzParseFrame: the decoder of the server's frames never panics, and
// where it and encoding/json both accept a frame written the way the
// server writes it (lower-case ASCII keys, no escapes), they agree.
//
//	go test -run '^$' -fuzz FuzzParseFrame -fuzztime 60s ./client/
func FuzzParseFrame(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseFrame(s, new(keeper))
		if err != nil || !utf8.ValidString(s) || strings.ContainsAny(s, `\`) || s != strings.ToLower(s) || !json.Valid([]byte(s)) {
			return
		}
		var want inFrame
		if json.Unmarshal([]byte(s), &want) != nil {
			return // a type encoding/json refuses where the decoder is lenient
		}
		if !sameFrame(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", s, got, want)
		}
	})
}

// sameFrame compares frames, their times by instant.
func sameFrame(a, b inFrame) bool {
	msgs := func(x, y *Message) bool {
		if x == nil || y == nil {
			return x == y
		}
		if !x.SentAt.Equal(y.SentAt) {
			return false
		}
		xc, yc := *x, *y
		xc.SentAt = yc.SentAt
		return reflect.DeepEqual(xc, yc)
	}
	if !msgs(a.Message, b.Message) {
		return false
	}
	if (a.Update == nil) != (b.Update == nil) {
		return false
	}
	if a.Update != nil {
		if !msgs(a.Update.Message, b.Update.Message) {
			return false
		}
		ua, ub := *a.Update, *b.Update
		ua.Message, ub.Message = nil, nil
		if !reflect.DeepEqual(ua, ub) {
			return false
		}
	}
	a.Message, b.Message, a.Update, b.Update = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// BenchmarkParseFrame decodes a message update, the frame a stream
// receives most.
//
//	go test -run '^$' -bench ParseFrame ./client/
func BenchmarkParseFrame(b *testing.B) {
	s := `{"type":"update","update":{"cursor":31337,"type":"message","message":{"conversation_id":"dkq3vbm2xw5yq7zr4t6u8p1n0ao","seq":4711,"sender":"messenger:user-17","client_id":"bench-17-4711","kind":"text","body":"a message of a typical length, some sixty bytes or so......","meta":{},"sent_at":"2026-11-27T08:00:00.123456789Z"}}}`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseFrame(s, new(keeper)); err != nil {
			b.Fatal(err)
		}
	}
}

// The send frame is sized exactly when no string needs an escape, so that
// building it allocates once.
func TestSendFrameSize(t *testing.T) {
	for _, meta := range [][]byte{nil, []byte(`{"k":[1,2]}`)} {
		b := appendSendFrame(nil, "r1", "d_0123", "c-77", strings.Repeat("x", 64), meta)
		n := sendFrameSize("r1", "d_0123", "c-77", strings.Repeat("x", 64), meta)
		want := len(b)
		if meta == nil {
			want += len(`,"meta":`)
		}
		if n != want {
			t.Errorf("meta %s: size %d, frame %d bytes", meta, n, len(b))
		}
	}
	if a, b := newClientID(), newClientID(); a == b || len(a) != 24 {
		t.Errorf("client ids %q and %q, want two of 24 hex digits", a, b)
	}
}
