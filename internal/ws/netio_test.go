package ws

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// frameTracker finds every frame boundary, wherever the stream is cut.
func TestFrameTracker(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	ends := map[int]bool{0: true}
	for range 1000 {
		b0 := byte(0x1)
		if rng.IntN(2) == 0 {
			b0 |= 0x80
		}
		var n int
		var h []byte
		mask := byte(0)
		if rng.IntN(4) > 0 {
			mask = 0x80
		}
		switch rng.IntN(5) {
		case 0:
			n = 0
			h = []byte{b0, mask}
		case 1, 2:
			n = rng.IntN(126)
			h = []byte{b0, mask | byte(n)}
		case 3:
			n = 126 + rng.IntN(5000)
			h = binary.BigEndian.AppendUint16([]byte{b0, mask | 126}, uint16(n))
		default:
			n = rng.IntN(300) // 64-bit lengths need not be minimal
			h = binary.BigEndian.AppendUint64([]byte{b0, mask | 127}, uint64(n))
		}
		if mask != 0 {
			h = append(h, 1, 2, 3, 4)
		}
		stream = append(stream, h...)
		stream = append(stream, make([]byte, n)...)
		ends[len(stream)] = true
	}
	for _, maxPiece := range []int{1, 2, 7, 100, 5000} {
		var tr frameTracker
		for pos := 0; pos < len(stream); {
			k := min(1+rng.IntN(maxPiece), len(stream)-pos)
			tr.advance(stream[pos : pos+k])
			pos += k
			if got := tr.boundary(); got != ends[pos] {
				t.Fatalf("pieces up to %d: boundary() = %v at %d, want %v", maxPiece, got, pos, ends[pos])
			}
		}
	}
}

// The text frame headers the session writer writes are RFC 6455's (its
// section 5.7 examples, with the text opcode), and the frame tracker reads
// whole frames from them.
func TestTextHeader(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0x00}},
		{5, []byte{0x81, 0x05}},
		{125, []byte{0x81, 0x7d}},
		{126, []byte{0x81, 0x7e, 0x00, 0x7e}},
		{256, []byte{0x81, 0x7e, 0x01, 0x00}},
		{65535, []byte{0x81, 0x7e, 0xff, 0xff}},
		{65536, []byte{0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
	} {
		h := appendTextHeader(nil, c.n)
		if string(h) != string(c.want) {
			t.Errorf("%d bytes: header % x, want % x", c.n, h, c.want)
		}
		var tr frameTracker
		tr.advance(h)
		tr.advance(make([]byte, c.n))
		if !tr.boundary() {
			t.Errorf("%d bytes: the tracker is not at a boundary after the frame", c.n)
		}
	}
}
