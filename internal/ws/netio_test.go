package ws

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"
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

// A sock reports idleness only before a frame header, wakes once per
// readiness when parked, wakes on Close, and leaves the poller's table when
// closed.
func TestSockParkWakeClose(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux's epoll")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := newSock(nc)
	if s.raw == nil {
		t.Fatal("a TCP connection is not pollable")
	}
	woke := make(chan struct{}, 4)
	s.onWake = func() { woke <- struct{}{} }
	expectWake := func(why string) {
		t.Helper()
		select {
		case <-woke:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake after %s", why)
		}
		select {
		case <-woke:
			t.Fatalf("a second wake after %s", why)
		case <-time.After(50 * time.Millisecond):
		}
	}

	buf := make([]byte, 16)
	s.idleOK.Store(true)
	// New (quick): idle at once.
	if _, err := s.Read(buf); err != errIdle {
		t.Fatalf("Read with nothing to read: %v, want errIdle", err)
	}
	// After a message: idle after idleGrace.
	s.quick.Store(false)
	start := time.Now()
	if _, err := s.Read(buf); err != errIdle {
		t.Fatalf("Read with nothing to read: %v, want errIdle", err)
	}
	if d := time.Since(start); d < idleGrace {
		t.Fatalf("idle after %v, want at least %v", d, idleGrace)
	}
	if !s.park() {
		t.Fatal("park refused")
	}
	// The first 3 bytes of a frame header with a 16-bit length.
	peer.Write([]byte{0x81, 0xfe, 0x00})
	expectWake("bytes arrived")
	if n, err := s.Read(buf); err != nil || n != 3 {
		t.Fatalf("Read = %d, %v; want the 3 bytes", n, err)
	}
	// Inside a header: Read waits rather than report idleness.
	go func() {
		time.Sleep(2 * idleGrace)
		peer.Write([]byte{0x02, 1, 2, 3, 4, 'h', 'i'})
	}()
	if n, err := s.Read(buf); err != nil || n != 7 {
		t.Fatalf("Read inside a header = %d, %v; want the 7 bytes", n, err)
	}
	if !s.fr.boundary() {
		t.Fatal("not at a boundary after a whole frame")
	}

	if _, err := s.Read(buf); err != errIdle {
		t.Fatalf("Read after a whole frame: %v, want errIdle", err)
	}
	if !s.park() {
		t.Fatal("park refused")
	}
	s.Close()
	expectWake("Close")
	thePoller.mu.Lock()
	_, inTable := thePoller.parked[s.id]
	thePoller.mu.Unlock()
	if inTable {
		t.Fatal("a closed sock is still in the poller's table")
	}
	if s.park() {
		t.Fatal("a closed sock parked")
	}
}
