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

	"github.com/switchboard-chat/switchboard/internal/wsframe"
)

// A sock reports idleness only while its frame reader stands before a
// message's header with nothing read ahead, wakes once per
// readiness when parked, wakes on Close, and leaves the poller's table when
// closed.
func TestSockParkWakeClose(t *testing.T) {
	ln := listen(t)
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
	// The first 3 bytes of a frame header with a 16-bit length, read by
	// the session's frame reader: inside a header, with bytes read ahead,
	// it waits for the rest rather than let the socket report idleness.
	peer.Write([]byte{0x81, 0xfe, 0x00})
	expectWake("bytes arrived")
	go func() {
		time.Sleep(2 * idleGrace)
		peer.Write([]byte{0x02, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2})
	}()
	fr := getFrameReader(s, 1<<10)
	var ctl [125]byte
	if op, data, _, err := fr.next(&ctl); err != nil || op != wsframe.OpText || string(data) != "hi" {
		t.Fatalf("a message whose header came in two parts: %d %q, %v; want text \"hi\"", op, data, err)
	}
	fr.release()
	// Between messages, nothing read ahead: idle.
	if _, _, _, err := fr.next(&ctl); err != errIdle {
		t.Fatalf("the frame reader after a whole message: %v, want errIdle", err)
	}
	fr.put()
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
	ln := listen(t)
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

// parkRefused checks that s, idle, cannot park, and then no longer
// reports idleness.
func parkRefused(t testing.TB, s *sock, parkedMsg string) {
	t.Helper()
	s.idleOK.Store(true)
	if _, err := s.Read(make([]byte, 16)); err != errIdle {
		t.Fatalf("Read: %v, want errIdle", err)
	}
	if s.park() {
		t.Fatal(parkedMsg)
	}
	if !s.noIdle.Load() {
		t.Fatal("a session that cannot park may still report idleness")
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
	ln := listen(t)
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
	parkRefused(t, socks[0], "parked with a failed poller")
}

// A park that epoll refuses is logged, and only once in a while: here
// EEXIST, from socks sharing one socket, stands for ENOSPC past
// fs.epoll.max_user_watches.
func TestParkFailureLogged(t *testing.T) {
	log := logCapture(t)
	parkFailures.logged.Store(0)
	before := parkFailures.n.Load()
	ln := listen(t)
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
		parkRefused(t, s, "a second registration of the same socket parked")
	}
	if n := parkFailures.n.Load() - before; n != 2 {
		t.Fatalf("%d park failures counted, want 2", n)
	}
	if n := strings.Count(log.String(), "cannot park"); n != 1 {
		t.Fatalf("%d park failures logged, want 1: %q", n, log.String())
	}
}

// listen listens on a loopback port until the test ends.
func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// testPoller is a poller of the test's own, independent of the process's:
// what it has in its table is the test's. It is stopped when the test ends
// (a failure, which it logs to the test's log capture).
func testPoller(t *testing.T) *poller {
	logCapture(t)
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.f.Close() })
	return p
}

// sockFD is the file descriptor of s.
func sockFD(s *sock) int {
	fd := -1
	s.raw.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// Bytes that arrive between the EAGAIN and the epoll registration (ADD for
// the first park, MOD for later ones) wake the session.
func TestReadinessBeforeArm(t *testing.T) {
	ln := listen(t)
	peer, nc := tcpPair(t, ln)
	defer peer.Close()
	s := newSock(nc)
	defer s.Close()
	woke := make(chan struct{}, 8)
	s.onWake = func() { woke <- struct{}{} }
	buf := make([]byte, 16)
	for round := range 3 {
		s.idleOK.Store(true)
		s.quick.Store(true)
		if _, err := s.Read(buf); err != errIdle {
			t.Fatalf("Read: %v", err)
		}
		// A whole (unmasked, fine for the tracker) 1-byte frame arrives
		// before the registration.
		peer.Write([]byte{0x81, 0x01, 'x'})
		time.Sleep(20 * time.Millisecond)
		if !s.park() {
			t.Fatal("park refused")
		}
		select {
		case <-woke:
		case <-time.After(2 * time.Second):
			t.Fatalf("round %d: bytes that came before the registration never woke the session", round)
		}
		if n, err := s.Read(buf); err != nil || n != 3 {
			t.Fatalf("Read = %d, %v", n, err)
		}
	}
}

// fd numbers are reused by new connections while events and closes of old
// ones are in flight: each sock is woken exactly once per park, by its own
// peer's bytes or by its own Close, never by another's.
func TestFDReuseStress(t *testing.T) {
	ln := listen(t)
	p := testPoller(t)
	var mu sync.Mutex // Accept pairs must match Dial
	fds := map[int]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				mu.Lock()
				peer, nc := tcpPair(t, ln)
				mu.Unlock()
				s := newSock(nc)
				s.p = p
				var wakes atomic.Int32
				woke := make(chan struct{}, 4)
				s.onWake = func() { wakes.Add(1); woke <- struct{}{} }
				parkNow(t, s)
				mu.Lock()
				fds[sockFD(s)]++
				mu.Unlock()
				switch (g + i) % 3 {
				case 0: // peer bytes, then close at the same time
					go peer.Write([]byte{0x81, 0x00})
					s.Close()
				case 1: // peer bytes, then the session parks again, then close
					peer.Write([]byte{0x81, 0x00})
					select {
					case <-woke:
					case <-time.After(5 * time.Second):
						t.Error("no wake on bytes")
						return
					}
					buf := make([]byte, 16)
					if n, err := s.Read(buf); n != 2 || err != nil {
						t.Errorf("Read = %d, %v", n, err)
					}
					parkNow(t, s)
					peer.Close()
					<-woke
					s.Close()
					wakes.Add(-1)
				case 2: // the peer goes away while parked
					peer.Close()
					select {
					case <-woke:
					case <-time.After(5 * time.Second):
						t.Error("no wake on hangup")
						return
					}
					s.Close()
				}
				time.Sleep(time.Millisecond)
				if n := wakes.Load(); n != 1 {
					t.Errorf("sock %d: %d wakes for one park", s.id, n)
				}
				peer.Close()
			}
		}()
	}
	wg.Wait()
	reused := 0
	for _, n := range fds {
		if n > 1 {
			reused++
		}
	}
	if reused == 0 {
		t.Fatal("no fd number was reused: the test did not test reuse")
	}
	p.mu.Lock()
	left := len(p.parked)
	p.mu.Unlock()
	t.Logf("%d fd numbers reused; %d socks left in the poller's table", reused, left)
	if left != 0 {
		t.Fatalf("%d closed socks left in the poller's table", left)
	}
}

// More parked sockets ready at once than one epoll_wait returns (128):
// each wakes.
func TestManyReadyAtOnce(t *testing.T) {
	ln := listen(t)
	p := testPoller(t)
	const n = 400
	var wakes atomic.Int32
	peers := make([]net.Conn, n)
	socks := make([]*sock, n)
	for i := range n {
		peer, nc := tcpPair(t, ln)
		peers[i] = peer
		s := newSock(nc)
		s.p = p
		s.onWake = func() { wakes.Add(1) }
		parkNow(t, s)
		socks[i] = s
	}
	for _, p := range peers {
		p.Write([]byte{0x81, 0x00})
	}
	deadline := time.Now().Add(5 * time.Second)
	for wakes.Load() != n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := wakes.Load(); got != n {
		t.Fatalf("%d wakes, want %d", got, n)
	}
	for i := range n {
		socks[i].Close()
		peers[i].Close()
	}
}
