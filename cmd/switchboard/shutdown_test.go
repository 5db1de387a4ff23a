package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	sb "github.com/switchboard-chat/switchboard/client"
)

// TestShutdownUnderTraffic sends SIGTERM to the built binary while HTTP and
// WebSocket clients send, and checks that the process exits 0 within its
// shutdown timeout, that every socket is closed with 1001 (going away), and,
// after a restart on the same data, that every acknowledged message is
// there with its seq and body.
func TestShutdownUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	p := startProc(t, bin, data, testAdminToken)
	c := cli{t, p.base, testAdminToken}
	c.must("app", "create", "messenger")
	// The load here is one user's: lift the per-user send rate.
	c.must("app", "limits", "messenger", "--user-sends-per-second", "100000", "--user-burst", "100000")
	tokens := map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		tokens[u] = strings.TrimSpace(c.must("token", "messenger", u))
	}
	ctx := context.Background()
	alice := sb.New(p.base, tokens["alice"], nil)
	conv, _, err := alice.CreateConversation(ctx, []string{"messenger:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		acks     []acked
		progress = make(chan struct{}, 1)
	)
	ack := func(seq int64, body string) {
		mu.Lock()
		acks = append(acks, acked{conv.ID, seq, body})
		mu.Unlock()
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}

	// Sockets: four of alice's send one message at a time and wait for each
	// ack; four of bob's only listen. Each records how it was closed.
	const sockets = 8
	closes := make(chan error, sockets)
	var wg sync.WaitGroup
	for i := range sockets {
		user, sends := "alice", i < 4
		if !sends {
			user = "bob"
		}
		ws, _, err := websocket.Dial(ctx, strings.Replace(p.base, "http", "ws", 1)+"/v1/ws?token="+tokens[user], nil)
		if err != nil {
			t.Fatal(err)
		}
		ws.SetReadLimit(1 << 20)
		wg.Go(func() {
			defer ws.CloseNow()
			n := 0
			send := func() error {
				body := fmt.Sprintf("ws%d-%d", i, n)
				b, _ := json.Marshal(map[string]string{"type": "send", "ref": body, "conversation_id": conv.ID, "client_id": body, "body": body})
				return ws.Write(ctx, websocket.MessageText, b)
			}
			for {
				_, b, err := ws.Read(ctx)
				if err != nil {
					closes <- err
					return
				}
				var f struct {
					Type    string
					Ref     string
					Message struct {
						Seq  int64
						Body string
					}
				}
				if err := json.Unmarshal(b, &f); err != nil {
					closes <- fmt.Errorf("frame %s: %v", b, err)
					return
				}
				switch {
				case !sends:
				case f.Type == "ready":
					send()
				case f.Type == "ack":
					ack(f.Message.Seq, f.Message.Body)
					n++
					send() // after the shutdown began this fails or is refused: fine
				}
			}
		})
	}
	// Two HTTP senders, until the server stops answering.
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				body := fmt.Sprintf("http%d-%d", w, i)
				s, err := alice.Send(ctx, conv.ID, body, body, nil)
				if err != nil {
					return
				}
				ack(s.Message.Seq, s.Message.Body)
			}
		})
	}

	waitFor(t, "200 acknowledged sends", progress, func() bool { return count() >= 200 })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not exit within 30s of SIGTERM; stderr:\n%s", p.stderr)
	}
	if p.code != 0 || !strings.Contains(p.stderr.String(), "msg=\"shutting down\"") || !strings.Contains(p.stderr.String(), "msg=stopped") {
		t.Fatalf("exit code %d; stderr:\n%s", p.code, p.stderr)
	}
	wg.Wait()
	close(closes)
	for err := range closes {
		if st := websocket.CloseStatus(err); st != websocket.StatusGoingAway {
			var ce websocket.CloseError
			errors.As(err, &ce)
			t.Errorf("a socket ended with %v (status %d, reason %q), want 1001 going away", err, st, ce.Reason)
		}
	}

	// Every acknowledged message survives a restart.
	p2 := startProc(t, bin, data, testAdminToken)
	alice = sb.New(p2.base, tokens["alice"], nil)
	got := map[int64]string{}
	for before := int64(0); ; {
		page, err := alice.History(ctx, conv.ID, before, 200)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got[m.Seq] = m.Body
		}
		before = page[len(page)-1].Seq
	}
	for _, a := range acks {
		if got[a.seq] != a.body {
			t.Fatalf("acknowledged message #%d %q is %q after the restart", a.seq, a.body, got[a.seq])
		}
	}
	t.Logf("%d acknowledged messages, %d stored, %d sockets closed with going-away", len(acks), len(got), sockets)
}
