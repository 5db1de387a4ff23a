package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A handshake over the corking transport reports its socket, and frames
// written while it is corked reach the peer, in order, once it is uncorked.
func TestCorkedBatch(t *testing.T) {
	got := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			got <- string(b)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cork *corkConn
	hc := &http.Client{Transport: corkingTransport(nil)}
	c, _, err := websocket.Dial(traceCork(ctx, &cork), "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if cork == nil {
		t.Fatal("the handshake did not report a corkConn")
	}
	cork.cork()
	for i := range 3 {
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(cork.buf); n == 0 {
		t.Fatal("corked writes were not gathered")
	}
	if err := cork.uncork(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		select {
		case f := <-got:
			if want := fmt.Sprint("f", i); f != want {
				t.Fatalf("frame %d is %q, want %q", i, f, want)
			}
		case <-ctx.Done():
			t.Fatalf("frame %d never arrived", i)
		}
	}
}
