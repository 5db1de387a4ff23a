package ws

import (
	"net"
	"testing"
	"time"
)

// A sock reports idleness only before a frame header, wakes once per
// readiness when parked, wakes on Close, and leaves the poller's table when
// closed.
func TestSockParkWakeClose(t *testing.T) {
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
