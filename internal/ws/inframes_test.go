package ws

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/wsframe"
)

func testFrameReader(b []byte, limit int64) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(bytes.NewReader(b), minBufSize), idleOK: new(atomic.Bool), limit: limit}
}

// clientMessage frames msg as a client may: masked, cut into fragments at
// random, with pings between them.
func clientMessage(b []byte, rng *rand.Rand, op byte, msg []byte) []byte {
	first := true
	for {
		n := len(msg)
		if n > 0 && rng.IntN(3) == 0 {
			n = rng.IntN(n + 1)
		}
		fop := byte(wsframe.OpContinuation)
		if first {
			fop = op
		}
		var key [4]byte
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		start := len(b)
		b = wsframe.AppendMasked(b, fop, msg[:n], key)
		msg = msg[n:]
		if len(msg) > 0 {
			b[start] &^= 0x80 // not the last fragment
		}
		first = false
		if rng.IntN(4) == 0 {
			b = wsframe.AppendMasked(b, wsframe.OpPing, []byte("p"), key)
		}
		if len(msg) == 0 {
			return b
		}
	}
}

// The reader yields every message a client framed, whole, unmasked, across
// fragments and the pings between them, and then the close.
func TestFrameReaderReadsClientFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var stream []byte
	var want [][]byte
	for i := range 300 {
		msg := make([]byte, rng.IntN([]int{10, 200, 70000}[i%3]))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		want = append(want, msg)
		stream = clientMessage(stream, rng, wsframe.OpText, msg)
	}
	stream = wsframe.AppendMasked(stream, wsframe.OpClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}, [4]byte{1, 2, 3, 4})
	fr := testFrameReader(stream, 1<<20)
	var ctl [125]byte
	pings := 0
	for i := 0; ; {
		op, data, p, err := fr.next(&ctl)
		var cf *wsframe.CloseFrame
		if errors.As(err, &cf) {
			if i != len(want) || cf.Code != 1000 || cf.Reason != "bye" {
				t.Fatalf("close %+v after %d messages of %d", cf, i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if op == wsframe.OpPing {
			if string(p) != "p" {
				t.Fatalf("ping payload %q", p)
			}
			pings++
			continue
		}
		if op != wsframe.OpText || !bytes.Equal(data, want[i]) {
			t.Fatalf("message %d: opcode %d, %d bytes; want text, %d bytes", i, op, len(data), len(want[i]))
		}
		fr.release()
		i++
	}
	if pings == 0 {
		t.Fatal("no ping between fragments: the test did not exercise them")
	}
}

// Frames no client may send are refused: unmasked, reserved bits or
// opcodes, fragments out of place, long or fragmented control frames, a
// message over the limit; a stream cut inside a frame is an unexpected EOF.
func TestFrameReaderRefuses(t *testing.T) {
	key := [4]byte{9, 8, 7, 6}
	masked := func(op byte, p []byte) []byte { return wsframe.AppendMasked(nil, op, p, key) }
	notFin := func(b []byte) []byte { b[0] &^= 0x80; return b }
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"unmasked", wsframe.AppendText(nil, []byte("x")), wsframe.ErrProtocol},
		{"reserved bit", func() []byte { b := masked(wsframe.OpText, []byte("x")); b[0] |= 0x40; return b }(), wsframe.ErrProtocol},
		{"reserved opcode", masked(0x3, []byte("x")), wsframe.ErrProtocol},
		{"reserved control opcode", masked(0xb, nil), wsframe.ErrProtocol},
		{"continuation first", masked(wsframe.OpContinuation, []byte("x")), wsframe.ErrProtocol},
		{"text inside a message", append(notFin(masked(wsframe.OpText, []byte("x"))), masked(wsframe.OpText, []byte("y"))...), wsframe.ErrProtocol},
		{"long ping", masked(wsframe.OpPing, make([]byte, 126)), wsframe.ErrProtocol},
		{"fragmented ping", notFin(masked(wsframe.OpPing, nil)), wsframe.ErrProtocol},
		{"close of one byte", masked(wsframe.OpClose, []byte{1}), wsframe.ErrProtocol},
		{"over the limit", masked(wsframe.OpText, make([]byte, 101)), wsframe.ErrTooBig},
		{"over the limit in fragments", append(notFin(masked(wsframe.OpText, make([]byte, 60))), masked(wsframe.OpContinuation, make([]byte, 60))...), wsframe.ErrTooBig},
		{"cut in the header", masked(wsframe.OpText, make([]byte, 300))[:3], io.ErrUnexpectedEOF},
		{"cut in the payload", masked(wsframe.OpText, []byte("hello"))[:8], io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
	} {
		fr := testFrameReader(c.b, 100)
		var ctl [125]byte
		_, _, _, err := fr.next(&ctl)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzFrameReader: any bytes from a client end in an error or in messages
// within the limit; none panics. Seeds in testdata/fuzz/FuzzFrameReader.
func FuzzFrameReader(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	f.Add(clientMessage(nil, rng, wsframe.OpText, []byte(`{"type":"ping","ref":"r"}`)))
	f.Add(clientMessage(nil, rng, wsframe.OpBinary, make([]byte, 300)))
	f.Add(wsframe.AppendMasked(nil, wsframe.OpClose, []byte{0x03, 0xe8}, [4]byte{1, 2, 3, 4}))
	f.Add([]byte{0x81, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := testFrameReader(b, 1000)
		var ctl [125]byte
		for range 100 {
			op, data, p, err := fr.next(&ctl)
			if err != nil {
				return
			}
			if len(data) > 1000 || len(p) > 125 || (op != wsframe.OpText && op != wsframe.OpBinary && op != wsframe.OpPing && op != wsframe.OpPong) {
				t.Fatalf("opcode %d, %d bytes, control payload %d bytes", op, len(data), len(p))
			}
			fr.release()
		}
	})
}

// BenchmarkFrameReader reads a client's sends as the pairs benchmark makes
// them: masked text frames of about 200 bytes, whole.
//
//	go test -run '^$' -bench FrameReader ./internal/ws/
func BenchmarkFrameReader(b *testing.B) {
	var stream []byte
	msg := bytes.Repeat([]byte("x"), 200)
	for range 1000 {
		stream = wsframe.AppendMasked(stream, wsframe.OpText, msg, [4]byte{1, 2, 3, 4})
	}
	src := bytes.NewReader(stream)
	fr := &frameReader{r: bufio.NewReaderSize(src, minBufSize), idleOK: new(atomic.Bool), limit: 1 << 20}
	var ctl [125]byte
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		src.Reset(stream)
		fr.r.Reset(src)
		for range 1000 {
			if _, _, _, err := fr.next(&ctl); err != nil {
				b.Fatal(err)
			}
			fr.release()
		}
	}
}
