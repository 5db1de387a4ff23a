package client

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
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
	// As the server writes most frames: decoded by position (parseFast).
	`{"type":"update","update":{"cursor":6,"type":"message","message":{"conversation_id":"d1","seq":3,"sender":"a:bob","client_id":"c2","kind":"text","body":"plain","meta":{},"sent_at":"2026-11-27T08:00:00.5Z"}}}`,
	`{"type":"ack","ref":"r9","message":{"conversation_id":"d1","seq":4,"sender":"a:bob","client_id":"c3","kind":"text","body":"","meta":null,"sent_at":"2024-02-29T23:59:59Z"},"cursor":7}`,
	// An ack in the place of its message's update (merge_acks).
	`{"type":"ack","ref":"r10","message":{"conversation_id":"d1","seq":5,"sender":"a:bob","client_id":"c4","kind":"text","body":"x","meta":{},"sent_at":"2024-02-29T23:59:59Z"},"cursor":8,"in_stream":true}`,
	`{"type":"ack","in_stream":true,"ref":"r11","message":{"conversation_id":"d1","seq":6,"sender":"a:bob","client_id":"c5","kind":"text","body":"x","meta":{"k":1},"sent_at":"2024-02-29T23:59:59Z"},"cursor":9}`,
	`{"type":"ack","ref":"r12","read_seq":4,"in_stream":false}`,
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

// The frames the server writes of messages, as internal/ws lays them out.
func serverFrames(m *Message, cursor int64, ref string) []string {
	cm := chat.Message{ConversationID: m.ConversationID, Seq: m.Seq, Sender: chat.Address(m.Sender), ClientID: m.ClientID, Kind: m.Kind, Body: m.Body, Meta: m.Meta, SentAt: m.SentAt}
	mj := string(wirejson.AppendMessage(nil, &cm))
	c := strconv.FormatInt(cursor, 10)
	return []string{
		`{"type":"update","update":{"cursor":` + c + `,"type":"message","message":` + mj + `}}`,
		`{"type":"ack","ref":` + string(wirejson.AppendString(nil, ref)) + `,"message":` + mj + `,"cursor":` + c + `}`,
		`{"type":"ack","ref":` + string(wirejson.AppendString(nil, ref)) + `,"message":` + mj + `,"cursor":` + c + `,"in_stream":true}`,
	}
}

// TestParseFastMatchesWalk: the frames of messages the server writes
// decode by position as they do by the walk, and those with escapes, a
// meta or another layout go to the walk.
func TestParseFastMatchesWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bodies := []string{"", "hi", strings.Repeat("x", 64), `q"uote`, "back\\slash", "é", "tab\t", "<&>"}
	fast := 0
	for i := range 2000 {
		m := &Message{
			ConversationID: fmt.Sprint("d", rng.IntN(50)), Seq: rng.Int64N(1 << 40), Sender: fmt.Sprint("messenger:u", rng.IntN(9)),
			ClientID: fmt.Sprintf("%024x", rng.Uint64()), Kind: "text", Body: bodies[i%len(bodies)],
			SentAt: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)/[]int64{1, 1e3, 1e6, 1e9}[i%4]*[]int64{1, 1e3, 1e6, 1e9}[i%4]).UTC(),
		}
		switch i % 7 {
		case 0:
			m.Meta = json.RawMessage(`{"k":1}`)
		case 1:
			m.Meta = json.RawMessage(`{}`)
		}
		for _, s := range serverFrames(m, rng.Int64N(1<<50), fmt.Sprint("r", i)) {
			want, err := walkFrame(s, new(keeper))
			if err != nil {
				t.Fatalf("%s: the walk: %v", s, err)
			}
			got, ok := parseFast(s, new(keeper))
			// ASCII bodies written without escapes, and no meta or {}.
			if plain := (m.Meta == nil || string(m.Meta) == "{}") && wirejson.Plain(m.Body) && string(wirejson.AppendString(nil, m.Body)) == `"`+m.Body+`"`; ok != plain {
				t.Fatalf("%s: decoded by position %v, want %v", s, ok, plain)
			}
			if !ok {
				continue
			}
			fast++
			if !sameFrame(got, want) {
				t.Fatalf("%s:\n by position %+v\n by the walk %+v", s, got, want)
			}
		}
	}
	if fast < 1500 {
		t.Fatalf("%d of 6000 frames decoded by position: the test did not exercise it", fast)
	}
	for _, s := range []string{
		`{"type":"update","update":{"cursor":1,"type":"message","message":{"conversation_id":"d","seq":1,"sender":"a:b","client_id":"c","kind":"text","body":"x","meta":null,"sent_at":"2026-02-30T00:00:00Z"}}}`,
		`{"type":"update","update":{"cursor":01,"type":"message","message":{"conversation_id":"d","seq":1,"sender":"a:b","client_id":"c","kind":"text","body":"x","meta":null,"sent_at":"2026-01-30T00:00:00Z"}}}`,
		`{"type":"update","update":{"cursor":1,"type":"message","message":{"conversation_id":"d","seq":1,"sender":"a:b","client_id":"c","kind":"text","body":"x","meta":null,"sent_at":"2026-01-30T00:00:00Z"}}} `,
		`{"type":"ack","ref":"r","message":{"conversation_id":"d\u0041","seq":1,"sender":"a:b","client_id":"c","kind":"text","body":"x","meta":null,"sent_at":"2026-01-30T00:00:00Z"},"cursor":2}`,
		`{"type":"ack","ref":"r","message":{"conversation_id":"d","seq":1,"sender":"a:b","client_id":"c","kind":"text","body":"x","meta":null,"sent_at":"2026-01-30T00:00:00Z"},"cursor":1234567890123456789}`,
	} {
		if _, ok := parseFast(s, new(keeper)); ok {
			t.Errorf("%s: decoded by position; want it left to the walk", s)
		}
	}
}

// FuzzParseUTC: what the positional reader of times takes, time.Parse
// reads as the same instant.
//
//	go test -run '^$' -fuzz FuzzParseUTC -fuzztime 30s ./client/
func FuzzParseUTC(f *testing.F) {
	for _, s := range []string{"2026-11-27T08:00:00Z", "2026-11-27T08:00:00.123Z", "2024-02-29T23:59:59.999999999Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-27T08:00:00.Z", "0000-02-29T00:00:00Z", "0000-03-01T00:00:00.5Z", "9999-12-31T23:59:59Z", "2100-02-29T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUTC(s)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339, s)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("%q: %v by position, time.Parse %v %v", s, got, want, err)
		}
	})
}
