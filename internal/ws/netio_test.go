package ws

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/wsframe"
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

// The frame tracker reads whole frames from the text frames the session
// writer writes (their bytes are wsframe's to test).
func TestTrackerReadsTextFrames(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 256, 65535, 65536} {
		var tr frameTracker
		f := wsframe.AppendText(nil, make([]byte, n))
		tr.advance(f[:len(f)-n])
		if n > 0 && tr.boundary() {
			t.Errorf("%d bytes: the tracker is at a boundary after the header alone", n)
		}
		tr.advance(f[len(f)-n:])
		if !tr.boundary() {
			t.Errorf("%d bytes: the tracker is not at a boundary after the frame", n)
		}
	}
}
