package ws_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

// clientFrame encodes a client's frame, masked as RFC 6455 requires. long
// forces the 64-bit length encoding.
func clientFrame(fin bool, opcode byte, payload []byte, long bool) []byte {
	var mask [4]byte
	rand.Read(mask[:])
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case long:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	}
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

// rawPeer is a raw socket after the handshake, reading the server's frames.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func newRawPeer(t *testing.T, e *env, tok string) *rawPeer {
	nc := rawDial(t, e.url, tok)
	t.Cleanup(func() { nc.Close() })
	return &rawPeer{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// write writes b in pieces cut at cuts (offsets into b), pausing between
// them long enough for the server to have read what came before.
func (p *rawPeer) write(b []byte, cuts ...int) {
	p.t.Helper()
	prev := 0
	for _, c := range append(cuts, len(b)) {
		if _, err := p.nc.Write(b[prev:c]); err != nil {
			p.t.Fatal(err)
		}
		prev = c
		if c < len(b) {
			time.Sleep(30 * time.Millisecond)
		}
	}
}

// next reads the server's next frame: its opcode and payload.
func (p *rawPeer) next() (byte, []byte) {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(readWait))
	op, b, err := readServerFrame(p.r)
	if err != nil {
		p.t.Fatalf("reading a frame: %v", err)
	}
	return op, b
}

// nextData reads the server's next data frame, skipping its pings.
func (p *rawPeer) nextData() frame {
	p.t.Helper()
	for {
		op, b := p.next()
		if op == 0x9 {
			continue
		}
		if op != 0x1 {
			p.t.Fatalf("frame with opcode %#x (%q), want text", op, b)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			p.t.Fatalf("frame %q: %v", b, err)
		}
		f.Raw = b
		return f
	}
}

func waitIdle(t *testing.T, e *env, n int) {
	t.Helper()
	waitFor(t, fmt.Sprint(n, " idle sessions"), 5*time.Second, func() bool { return e.ws.IdleConnections() == n })
}

// An idle session has no goroutine: its socket waits in the poller. Its
// peer closing the socket ends the session and whatever it started.
func TestIdleSocketsHaveNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux's epoll")
	}
	e := newEnv(t, envOpts{memory: true})
	e.app("idle")
	toks := make([]string, 201)
	for i := range toks {
		toks[i] = e.token(chat.NewAddress("idle", fmt.Sprint("u", i)))
	}
	// One first, so that the process-wide poller runs before counting.
	first := rawDial(t, e.url, toks[0])
	defer first.Close()
	waitIdle(t, e, 1)
	base := runtime.NumGoroutine()

	const n = 200
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = rawDial(t, e.url, toks[i+1])
	}
	waitFor(t, "every session", 5*time.Second, func() bool { return e.ws.Connections() == n+1 })
	waitIdle(t, e, n+1)
	// The HTTP server's goroutines of the handshakes end too.
	waitFor(t, "the handshakes' goroutines to end", 5*time.Second, func() bool { return runtime.NumGoroutine()-base < n/20 })

	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "the sessions of the closed sockets to end", 5*time.Second, func() bool { return e.ws.Connections() == 1 })
	if got := e.ws.IdleConnections(); got != 1 {
		t.Fatalf("%d idle sessions after the peers closed, want 1", got)
	}
	waitFor(t, "goroutines back to before", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

// A socket that was idle (parked) gets and sends frames when it is active
// again, each time.
func TestIdleThenActive(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	conv := twoApps(e)
	a := e.dial(e.token(alice), 0)
	a.readUntilReady()
	waitIdle(t, e, 1)
	for i := range 3 {
		// A frame from the client wakes the session; the answer comes.
		a.write(fmt.Sprintf(`{"type":"ping","ref":"p%d"}`, i))
		if f := a.next(); f.Type != "pong" || f.Ref != fmt.Sprint("p", i) {
			t.Fatalf("got %s, want the pong of p%d", f.Raw, i)
		}
		waitIdle(t, e, 1)
		a.write(map[string]any{"type": "send", "ref": fmt.Sprint("s", i), "conversation_id": conv, "client_id": fmt.Sprint("c", i), "body": "hi"})
		ack, _ := a.nextOf("ack")
		if ack.Ref != fmt.Sprint("s", i) {
			t.Fatalf("got %s, want the ack of s%d", ack.Raw, i)
		}
		waitIdle(t, e, 1)
		// An update for the idle session is written without waking it.
		e.send(bob, conv, fmt.Sprint("b", i), "hello")
		for {
			// Alice's own message may come first.
			u, _ := a.nextOf("update")
			if u.Update.Message != nil && u.Update.Message.Body == "hello" {
				break
			}
		}
		if n := e.ws.IdleConnections(); n != 1 {
			t.Fatalf("%d idle sessions after an update was written, want 1", n)
		}
	}
}

// Frames cut anywhere (inside a header, its extended length, its mask,
// its payload, between the fragments of a message) with pauses between the
// pieces: the server waits for the rest instead of taking the pause for
// idleness, and answers each frame once it is whole.
func TestFramesCutWithPauses(t *testing.T) {
	e := newEnv(t, envOpts{memory: true, cfg: ws.Config{MaxFrameBytes: 1 << 20}})
	e.app("messenger")
	p := newRawPeer(t, e, e.token(alice))
	if f := p.nextData(); f.Type != "ready" {
		t.Fatalf("got %s, want ready", f.Raw)
	}

	ping := func(ref string) []byte { return fmt.Appendf(nil, `{"type":"ping","ref":%q}`, ref) }
	expectPong := func(ref string) {
		t.Helper()
		if f := p.nextData(); f.Type != "pong" || f.Ref != ref {
			t.Fatalf("got %.100s, want the pong of %.20s", f.Raw, ref)
		}
	}

	// A short frame: cut after its first byte, in its mask, in its payload.
	p.write(clientFrame(true, 0x1, ping("short"), false), 1, 4, 9)
	expectPong("short")

	// A 16-bit length, cut inside it.
	ref := strings.Repeat("m", 300)
	p.write(clientFrame(true, 0x1, ping(ref), false), 1, 3, 8, 100)
	expectPong(ref)

	// A 64-bit length, cut inside it; larger than a read chunk.
	ref = strings.Repeat("l", 70000)
	p.write(clientFrame(true, 0x1, ping(ref), true), 2, 6, 12, 14, 5000, 60000)
	expectPong(ref)

	// A message in two fragments, with a pause between them.
	msg := ping("fragments")
	p.write(append(clientFrame(false, 0x1, msg[:10], false), clientFrame(true, 0x0, msg[10:], false)...), 16)
	expectPong("fragments")

	// A control ping between two data frames, cut in its header and in its
	// payload.
	x, y := clientFrame(true, 0x1, ping("x"), false), clientFrame(true, 0x1, ping("y"), false)
	cp := clientFrame(true, 0x9, []byte("hello"), false)
	all := append(append(x, cp...), y...)
	p.write(all, len(x)+1, len(x)+8)
	expectPong("x")
	if op, b := p.next(); op != 0xa || string(b) != "hello" {
		t.Fatalf("got opcode %#x %q, want the pong of the control ping", op, b)
	}
	expectPong("y")
	waitIdle(t, e, 1)
}

// The keepalive works while the session is parked: a peer that answers
// pings stays, its session parked between them; one that does not is
// dropped and its session ends.
func TestKeepaliveWhileIdle(t *testing.T) {
	t.Run("answers", func(t *testing.T) {
		e := newEnv(t, envOpts{memory: true, cfg: ws.Config{PingInterval: 300 * time.Millisecond, PongTimeout: time.Second}})
		e.app("messenger")
		p := newRawPeer(t, e, e.token(alice))
		if f := p.nextData(); f.Type != "ready" {
			t.Fatalf("got %s, want ready", f.Raw)
		}
		for range 3 {
			op, b := p.next()
			if op != 0x9 {
				t.Fatalf("got opcode %#x %q, want a ping", op, b)
			}
			// The ping went out from the parked session without waking it.
			if n := e.ws.IdleConnections(); n != 1 {
				t.Fatalf("%d idle sessions while a ping waits for its pong, want 1", n)
			}
			p.write(clientFrame(true, 0xa, b, false))
			waitIdle(t, e, 1)
		}
		if n := e.ws.Connections(); n != 1 {
			t.Fatalf("%d sessions after 3 pongs, want 1", n)
		}
		p.write(clientFrame(true, 0x1, []byte(`{"type":"ping","ref":"still"}`), false))
		if f := p.nextData(); f.Type != "pong" || f.Ref != "still" {
			t.Fatalf("got %s, want the pong of still", f.Raw)
		}
	})
	t.Run("silent", func(t *testing.T) {
		e := newEnv(t, envOpts{memory: true, cfg: ws.Config{PingInterval: 200 * time.Millisecond, PongTimeout: 200 * time.Millisecond}})
		e.app("messenger")
		nc := rawDial(t, e.url, e.token(alice))
		defer nc.Close()
		waitIdle(t, e, 1)
		waitFor(t, "the silent peer to be dropped", 5*time.Second, func() bool { return e.ws.Connections() == 0 })
		if n := e.ws.IdleConnections(); n != 0 {
			t.Fatalf("%d idle sessions after the drop, want 0", n)
		}
	})
}

// A peer that closes with a close frame while the session is idle gets
// the close answered, and the session ends.
func TestCloseFrameWhileIdle(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	e.app("messenger")
	p := newRawPeer(t, e, e.token(alice))
	if f := p.nextData(); f.Type != "ready" {
		t.Fatalf("got %s, want ready", f.Raw)
	}
	waitIdle(t, e, 1)
	p.write(clientFrame(true, 0x8, []byte{0x03, 0xe8, 'b', 'y', 'e'}, false))
	op, b := p.next()
	if op != 0x8 || len(b) < 2 || binary.BigEndian.Uint16(b) != 1000 {
		t.Fatalf("got opcode %#x %q, want a close 1000", op, b)
	}
	waitFor(t, "the session to end", 5*time.Second, func() bool { return e.ws.Connections() == 0 })
	if n := e.ws.IdleConnections(); n != 0 {
		t.Fatalf("%d idle sessions, want 0", n)
	}
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, p.nc); err != nil {
		t.Fatalf("after the close: %v, want EOF", err)
	}
}

// Shutdown closes idle sessions with 1001 and waits for them to end.
func TestShutdownWhileIdle(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	e.app("messenger")
	c := e.dial(e.token(alice), 0)
	c.readUntilReady()
	waitIdle(t, e, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.ws.Shutdown(ctx) }()
	if code, _ := c.closeStatus(); code != 1001 {
		t.Fatalf("close %d, want 1001", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, idle := e.ws.Connections(), e.ws.IdleConnections(); n != 0 || idle != 0 {
		t.Fatalf("%d sessions, %d idle after Shutdown, want none", n, idle)
	}
}
