package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/client"
)

// TestWebSocketThroughServer: the node serves /v1/ws with the same store and
// bus as the REST API, so a message sent over one user's socket reaches the
// other user's socket live, across apps.
func TestWebSocketThroughServer(t *testing.T) {
	e := start(t)
	e.app("messenger")
	e.app("instagram")
	e.interop("messenger", "instagram")
	e.interop("instagram", "messenger")
	alice, bob := e.token("messenger:alice"), e.token("instagram:bob")
	conv := e.create(alice, 201, "", "instagram:bob")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, err := client.New(e.base, alice, nil).Connect(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := client.New(e.base, bob, nil).Connect(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	const n = 20
	for i := range n {
		if _, err := sa.Send(ctx, conv.ID, fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Bob's stream: the conversation (cursor 1) then the n messages, in
	// order, each once.
	want := int64(1)
	for want <= n+1 {
		select {
		case ev := <-sb.Events():
			if ev.Update == nil {
				continue
			}
			if ev.Update.Cursor != want {
				t.Fatalf("bob got cursor %d, want %d", ev.Update.Cursor, want)
			}
			if want > 1 && ev.Update.Message.Body != fmt.Sprintf("m%d", want-2) {
				t.Fatalf("cursor %d holds %q", want, ev.Update.Message.Body)
			}
			want++
		case <-ctx.Done():
			t.Fatalf("bob's stream stopped at cursor %d", want-1)
		}
	}
	if got := e.history(bob, conv.ID); len(got) != n {
		t.Fatalf("history holds %d messages, want %d", len(got), n)
	}
}

// TestShutdownClosesSocketsGoingAway: stopping the node closes every
// WebSocket with the going-away code.
func TestShutdownClosesSocketsGoingAway(t *testing.T) {
	e := start(t)
	e.app("messenger")
	tok := e.token("messenger:alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := strings.Replace(e.base, "http://", "ws://", 1) + "/v1/ws?token=" + tok
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// Wait for ready, so that the session is fully set up.
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"ready"`) {
			break
		}
	}
	go e.stop()
	for {
		_, _, err = c.Read(ctx)
		if err != nil {
			break
		}
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Fatalf("socket ended with %v, want close code going away (1001)", err)
	}
}
