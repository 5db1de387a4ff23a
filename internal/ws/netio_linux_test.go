package ws

import (
	"net"
	"sync/atomic"
	"syscall"
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

// deadlineCounter counts the read deadlines set on a connection.
type deadlineCounter struct {
	*net.TCPConn
	n atomic.Int32
}

func (d *deadlineCounter) SetReadDeadline(t time.Time) error {
	d.n.Add(1)
	return d.TCPConn.SetReadDeadline(t)
}

func (d *deadlineCounter) SyscallConn() (syscall.RawConn, error) { return d.TCPConn.SyscallConn() }

// Once noIdle is set (the close handshake is coming) while a read waits
// out idleGrace, the idleness deadline fires once and is not set again: the
// read waits for bytes without waking every idleGrace.
func TestNoIdleStopsRearming(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, nc := tcpPair(t, ln)
	defer peer.Close()
	dc := &deadlineCounter{TCPConn: nc.(*net.TCPConn)}
	s := newSock(dc)
	defer s.Close()
	if s.raw == nil {
		t.Fatal("not pollable")
	}
	s.idleOK.Store(true)
	s.quick.Store(false)
	go func() {
		time.Sleep(idleGrace / 2)
		s.noIdle.Store(true)
		time.Sleep(6 * idleGrace)
		peer.Write([]byte{0x81, 0x00})
	}()
	buf := make([]byte, 16)
	n, err := s.Read(buf)
	if err != nil || n != 2 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	// One to arm, one to clear after it fires: 2. More means re-arming.
	if got := dc.n.Load(); got != 2 {
		t.Errorf("%d read deadlines set while one read waited 650 ms with noIdle set after 50 ms, want 2", got)
	}
}

// tcpPair returns both ends of a new TCP connection to ln.
func tcpPair(t testing.TB, ln net.Listener) (peer, nc net.Conn) {
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return peer, nc
}
