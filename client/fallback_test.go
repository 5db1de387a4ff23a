package client_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/netproxy"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

// deadURL is an address where nothing listens any more.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// With FallbackURLs, Connect goes past a URL that does not answer, and a
// stream whose node goes away resumes on the next URL.
func TestStreamFallbackURLs(t *testing.T) {
	n := startNode(t, ws.Config{})
	_, bob, conv := pair(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := &client.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}

	opts.FallbackURLs = []string{n.url}
	alice := client.New(deadURL(t), token(t, n, "messenger", "alice"), opts)
	as, err := alice.Connect(ctx, 0)
	if err != nil {
		t.Fatalf("Connect with a dead first URL and a live fallback: %v", err)
	}
	defer as.Close()

	// bob's stream goes through a proxy that then refuses for good: his
	// stream must move to the fallback, the node itself.
	p, addr := netproxy.New(t, n.url[len("http://"):])
	bob = client.New("http://"+addr, token(t, n, "instagram", "bob"), opts)
	bs := connect(ctx, t, bob)
	waitState(t, bs, client.Live)
	p.Cut()
	waitState(t, bs, client.Live)

	out, err := as.Send(ctx, conv, "after the move", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if u := nextUpdate(t, bs, "message"); u.Message.Body != "after the move" {
		t.Fatalf("bob got %+v", u.Message)
	}
}
