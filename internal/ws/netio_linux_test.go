package ws

import (
	"log/slog"
	"net"
	"strings"
	"sync"
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
	s.p.mu.Lock()
	_, inTable := s.p.parked[s.id]
	s.p.mu.Unlock()
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

// parkNow makes s report idleness (quick) and parks it.
func parkNow(t testing.TB, s *sock) {
	t.Helper()
	s.idleOK.Store(true)
	s.quick.Store(true)
	buf := make([]byte, 16)
	if _, err := s.Read(buf); err != errIdle {
		t.Fatalf("Read: %v, want errIdle", err)
	}
	if !s.park() {
		t.Fatal("park refused")
	}
}

// logCapture takes the poller's log for the rest of the test.
func logCapture(t *testing.T) *syncBuffer {
	var b syncBuffer
	old := pollLog.Swap(slog.New(slog.NewTextHandler(&b, nil)))
	t.Cleanup(func() { pollLog.Store(old) })
	return &b
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// When the poller can no longer wait (here its epoll file is closed under
// it), it says so, wakes every socket parked with it so that none is left
// without a reader, and parks no more; the process goes on.
func TestPollerFailureWakesParked(t *testing.T) {
	log := logCapture(t)
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var woke atomic.Int32
	socks := make([]*sock, 5)
	for i := range socks {
		peer, nc := tcpPair(t, ln)
		defer peer.Close()
		s := newSock(nc)
		defer s.Close()
		s.p = p
		s.onWake = func() { woke.Add(1) }
		parkNow(t, s)
		socks[i] = s
	}
	p.f.Close()
	for deadline := time.Now().Add(5 * time.Second); woke.Load() != int32(len(socks)); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d parked socks woke after the poller failed", woke.Load(), len(socks))
		}
	}
	if !strings.Contains(log.String(), "poller failed") {
		t.Fatalf("log %q, want the poller's failure", log.String())
	}
	s := socks[0]
	s.idleOK.Store(true)
	if _, err := s.Read(make([]byte, 16)); err != errIdle {
		t.Fatalf("Read: %v, want errIdle", err)
	}
	if s.park() {
		t.Fatal("parked with a failed poller")
	}
	if !s.noIdle.Load() {
		t.Fatal("a session that cannot park may still report idleness")
	}
}

// A park that epoll refuses is logged, and only once in a while: here
// EEXIST, from socks sharing one socket, stands for ENOSPC past
// fs.epoll.max_user_watches.
func TestParkFailureLogged(t *testing.T) {
	log := logCapture(t)
	parkFailures.logged.Store(0)
	before := parkFailures.n.Load()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, nc := tcpPair(t, ln)
	defer peer.Close()
	for i := range 3 {
		s := newSock(nc)
		defer s.Close()
		s.onWake = func() {}
		if i == 0 {
			parkNow(t, s)
			continue
		}
		s.idleOK.Store(true)
		if _, err := s.Read(make([]byte, 16)); err != errIdle {
			t.Fatalf("Read: %v, want errIdle", err)
		}
		if s.park() {
			t.Fatal("a second registration of the same socket parked")
		}
		if !s.noIdle.Load() {
			t.Fatal("a session that cannot park may still report idleness")
		}
	}
	if n := parkFailures.n.Load() - before; n != 2 {
		t.Fatalf("%d park failures counted, want 2", n)
	}
	if n := strings.Count(log.String(), "cannot park"); n != 1 {
		t.Fatalf("%d park failures logged, want 1: %q", n, log.String())
	}
}
