package ws_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

// An idle session has no goroutine: its socket waits in the poller. Its
// peer closing the socket ends the session and whatever it started.
func TestIdleSocketsHaveNoGoroutine(t *testing.T) {
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

// The keepalive works while the session is parked: a peer that answers
// pings stays, its session parked between them; one that does not is
// dropped and its session ends.
func TestKeepaliveWhileIdle(t *testing.T) {
	t.Run("answers", func(t *testing.T) {
		e := newEnv(t, envOpts{memory: true, cfg: ws.Config{PingInterval: 300 * time.Millisecond, PongTimeout: time.Second}})
		e.app("messenger")
		p := newRawPeer(t, e, e.token(alice))
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
