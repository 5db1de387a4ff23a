package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/ws"
)

// A stream of every frame layout, written one byte at a time with a pause
// after each: every cut is seen by the server, in the state it is in then
// (parked at once before the first message, inside fragments, inside a
// control frame between fragments). A park anywhere but between messages
// would make the library parse a header from its middle.
func TestFrameCutAtEveryByte(t *testing.T) {
	e := newEnv(t, envOpts{memory: true, cfg: ws.Config{MaxFrameBytes: 1 << 20}})
	e.app("messenger")
	p := newRawPeer(t, e, e.token(alice))
	waitIdle(t, e, 1)

	ping := func(ref string) []byte { return fmt.Appendf(nil, `{"type":"ping","ref":%q}`, ref) }
	frag := ping("frag-" + strings.Repeat("f", 300))
	var s []byte
	s = append(s, clientFrame(true, 0x1, ping("a"), false)...)
	s = append(s, clientFrame(true, 0x9, []byte("c1"), false)...)
	s = append(s, clientFrame(false, 0x1, frag[:5], false)...)     // 7-bit
	s = append(s, clientFrame(true, 0x9, []byte("c2"), false)...)  // control between fragments
	s = append(s, clientFrame(false, 0x0, frag[5:200], false)...)  // 16-bit
	s = append(s, clientFrame(true, 0xa, nil, false)...)           // empty unsolicited pong between fragments
	s = append(s, clientFrame(false, 0x0, frag[200:250], true)...) // 64-bit
	s = append(s, clientFrame(true, 0x0, frag[250:], false)...)    // last fragment
	s = append(s, clientFrame(true, 0x1, ping(strings.Repeat("z", 200)), false)...)

	pieces := make([]int, 0, len(s))
	for i := 1; i < len(s); i++ {
		pieces = append(pieces, i)
	}
	// The pauses are short: before the first message the session parks at
	// once, and inside a message it must wait whatever the pause.
	prev := 0
	for _, c := range append(pieces, len(s)) {
		if _, err := p.nc.Write(s[prev:c]); err != nil {
			t.Fatal(err)
		}
		prev = c
		time.Sleep(2 * time.Millisecond)
	}
	want := []string{"pong a", "ctl c1", "ctl c2", "pong " + "frag-" + strings.Repeat("f", 300), "pong " + strings.Repeat("z", 200)}
	for _, w := range want {
		op, b := p.next()
		var got string
		switch op {
		case 0xa:
			got = "ctl " + string(b)
		case 0x1:
			var f frame
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatalf("frame %q: %v", b, err)
			}
			got = f.Type + " " + f.Ref
		default:
			t.Fatalf("opcode %#x %q, want %.30s", op, b, w)
		}
		if got != w {
			t.Fatalf("got %.40q, want %.40q", got, w)
		}
	}
}

// The same layouts with pauses longer than idleGrace at each frame
// boundary inside a message, after a message (so the session is not in its
// quick mode): the session must wait for the rest of the message.
func TestFragmentPausesPastGrace(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	e.app("messenger")
	p := newRawPeer(t, e, e.token(alice))
	msg := []byte(`{"type":"ping","ref":"frag"}`)
	for round := range 2 {
		var s []byte
		var cuts []int
		s = append(s, clientFrame(true, 0x1, []byte(`{"type":"ping","ref":"warm"}`), false)...)
		cuts = append(cuts, len(s))
		s = append(s, clientFrame(false, 0x1, msg[:4], false)...)
		cuts = append(cuts, len(s))
		s = append(s, clientFrame(true, 0x9, []byte("c"), false)...)
		cuts = append(cuts, len(s))
		s = append(s, clientFrame(false, 0x0, msg[4:10], round == 1)...)
		cuts = append(cuts, len(s))
		s = append(s, clientFrame(true, 0x0, msg[10:], false)...)
		prev := 0
		for _, c := range append(cuts, len(s)) {
			if _, err := p.nc.Write(s[prev:c]); err != nil {
				t.Fatal(err)
			}
			prev = c
			time.Sleep(idleGraceForTest + 50*time.Millisecond)
		}
		if f := p.nextData(); f.Ref != "warm" {
			t.Fatalf("got %s, want the pong of warm", f.Raw)
		}
		if op, b := p.next(); op != 0xa || string(b) != "c" {
			t.Fatalf("got %#x %q, want the control pong", op, b)
		}
		if f := p.nextData(); f.Ref != "frag" {
			t.Fatalf("got %s, want the pong of frag", f.Raw)
		}
	}
}

// A message sent right around the moment the session parks (idleGrace
// after the previous one, or just as it shows as parked) is never lost:
// a lost wakeup would leave the session parked with bytes waiting.
func TestNoLostWakeupAroundPark(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	e.app("messenger")
	p := newRawPeer(t, e, e.token(alice))
	rng := rand.New(rand.NewPCG(7, 9))
	for i := range 30 {
		ref := fmt.Sprint("r", i)
		p.write(clientFrame(true, 0x1, fmt.Appendf(nil, `{"type":"ping","ref":%q}`, ref), false))
		p.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		op, b, err := readServerFrame(p.r, nil)
		if err != nil {
			t.Fatalf("iteration %d: no pong: %v (idle sessions: %d)", i, err, e.ws.IdleConnections())
		}
		if op != 0x1 || !strings.Contains(string(b), `"`+ref+`"`) {
			t.Fatalf("iteration %d: got %#x %q", i, op, b)
		}
		if i%3 == 0 {
			// Just as the session shows as parked.
			waitFor(t, "parked", 5*time.Second, func() bool { return e.ws.IdleConnections() == 1 })
			continue
		}
		// Around the end of the grace: the deadline firing, the
		// registration with epoll, and the bytes arriving race.
		time.Sleep(idleGraceForTest + time.Duration(rng.IntN(8000)-4000)*time.Microsecond)
	}
}

// idleGraceForTest is the package's idleGrace.
const idleGraceForTest = 100 * time.Millisecond

// A socket that gets a message every 20 ms is never parked (a park costs a
// wake and a goroutine per message).
func TestBusySocketNeverParks(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	e.app("messenger")
	p := newRawPeer(t, e, e.token(alice))
	p.write(clientFrame(true, 0x1, []byte(`{"type":"ping","ref":"first"}`), false))
	p.nextData()
	var parkedSeen atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if e.ws.IdleConnections() != 0 {
				parkedSeen.Add(1)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	for i := range 50 {
		p.write(clientFrame(true, 0x1, fmt.Appendf(nil, `{"type":"ping","ref":"b%d"}`, i), false))
		p.nextData()
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	<-done
	if n := parkedSeen.Load(); n != 0 {
		t.Fatalf("the busy session was seen parked %d times", n)
	}
}

// Every teardown of a parked session ends it and everything it started:
// a reset from the peer, a slow client cut by SlowCloseGrace, and a
// Shutdown whose close handshake the peer never answers.
func TestTeardownWhileParked(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		e := newEnv(t, envOpts{memory: true})
		e.app("messenger")
		// A first session, so that the process's poller runs before
		// counting.
		first := rawDial(t, e.url, e.token(alice))
		defer first.Close()
		waitIdle(t, e, 1)
		base := runtime.NumGoroutine()
		nc := rawDial(t, e.url, e.token(alice))
		waitIdle(t, e, 2)
		nc.(*net.TCPConn).SetLinger(0)
		nc.Close()
		waitFor(t, "the session to end", 5*time.Second, func() bool { return e.ws.Connections() == 1 })
		if n := e.ws.IdleConnections(); n != 1 {
			t.Fatalf("%d idle after the reset, want the first's", n)
		}
		waitFor(t, "goroutines back", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
	})
	t.Run("slow client", func(t *testing.T) {
		e := newEnv(t, envOpts{memory: true, cfg: ws.Config{QueueFrames: 16, QueueBytes: 64 << 10, SlowCloseGrace: 200 * time.Millisecond, WriteTimeout: time.Minute}})
		conv := twoApps(e)
		nc := rawDial(t, e.url, e.token(alice))
		defer nc.Close()
		nc.(*net.TCPConn).SetReadBuffer(4 << 10)
		waitIdle(t, e, 1)
		body := strings.Repeat("x", 4000)
		for i := 0; e.ws.Connections() == 1; i++ {
			if i > 20000 {
				t.Fatal("the session outlived 80 MB of updates it never read")
			}
			e.send(bob, conv, fmt.Sprint("c", i), body)
		}
		if n := e.ws.IdleConnections(); n != 0 {
			t.Fatalf("%d idle after the slow client was cut", n)
		}
	})
	t.Run("shutdown unanswered", func(t *testing.T) {
		e := newEnv(t, envOpts{memory: true})
		e.app("messenger")
		nc := rawDial(t, e.url, e.token(alice))
		defer nc.Close()
		waitIdle(t, e, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := e.ws.Shutdown(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v, want its deadline (the peer never answers the close)", err)
		}
		// Past its deadline Shutdown drops the sockets at once, the one
		// waiting for the peer's close too.
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Shutdown took %v with a deadline of 500ms", d)
		}
		if n, idle := e.ws.Connections(), e.ws.IdleConnections(); n != 0 || idle != 0 {
			t.Fatalf("%d sessions, %d idle after Shutdown", n, idle)
		}
	})
}
