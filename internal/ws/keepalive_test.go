package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

// A client whose socket the server stopped reading for backpressure
// (MaxInFlight operations waiting) answers pings, but the server cannot see
// the pongs until it reads again: that must not get the client dropped.
func TestKeepaliveWhileReadingPaused(t *testing.T) {
	bs := &blockingStore{entered: make(chan struct{}, 4), release: make(chan struct{})}
	e := newEnv(t, envOpts{
		cfg:       ws.Config{MaxInFlight: 1, PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond},
		wrapStore: func(s store.Store) store.Store { bs.Store = s; return bs },
	})
	conv := twoApps(e)
	var once sync.Once
	release := func() { once.Do(func() { close(bs.release) }) }
	t.Cleanup(release) // before the env's, so that a failure does not hang its Shutdown

	pings := make(chan struct{}, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.url+"?after=1", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + e.token(alice)}},
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true // answer it
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// Read all the time, so that pings are answered at once.
	frames := make(chan frame, 64)
	readErr := make(chan error, 1)
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				readErr <- err
				return
			}
			var f frame
			json.Unmarshal(b, &f)
			f.Raw = b
			frames <- f
		}
	}()
	next := func(typ string) frame {
		t.Helper()
		for {
			select {
			case f := <-frames:
				if f.Type == typ {
					return f
				}
			case err := <-readErr:
				t.Fatalf("socket ended while waiting for %s: %v", typ, err)
			case <-time.After(readWait):
				t.Fatalf("no %s frame", typ)
			}
		}
	}
	write := func(ref string) {
		t.Helper()
		b := fmt.Appendf(nil, `{"type":"send","ref":%q,"conversation_id":%q,"client_id":%q,"body":"x"}`, ref, conv, ref)
		if err := c.Write(context.Background(), websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	next("ready")

	// r1 holds the only operation slot in the store; reading r2 makes the
	// server's reader wait for it.
	write("r1")
	<-bs.entered
	for len(pings) > 0 {
		<-pings
	}
	write("r2")
	// Four pings: at least two were sent, and timed out, after the reader
	// paused; a dropped socket would get no more.
	for i := range 4 {
		select {
		case <-pings:
		case err := <-readErr:
			t.Fatalf("socket ended after %d pings while reading was paused: %v", i, err)
		case <-time.After(readWait):
			t.Fatalf("only %d pings while reading was paused", i)
		}
	}
	if n := e.ws.Connections(); n != 1 {
		t.Fatalf("%d sessions while reading was paused, want 1", n)
	}

	release()
	for _, ref := range []string{"r1", "r2"} {
		if ack := next("ack"); ack.Ref != ref {
			t.Fatalf("ack %s, want %s", ack.Raw, ref)
		}
	}
	// Reading again, the server sees the pongs: the socket stays.
	for len(pings) > 0 {
		<-pings
	}
	for range 3 {
		select {
		case <-pings:
		case err := <-readErr:
			t.Fatalf("socket ended after reading resumed: %v", err)
		case <-time.After(readWait):
			t.Fatal("no ping after reading resumed")
		}
	}
	if n := e.ws.Connections(); n != 1 {
		t.Fatalf("%d sessions after reading resumed, want 1", n)
	}
}
