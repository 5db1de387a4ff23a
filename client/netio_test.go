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

// echoFrames starts a WebSocket server, plain or TLS, that passes on every
// text message it reads.
func echoFrames(t *testing.T, useTLS bool) (*httptest.Server, <-chan string) {
	got := make(chan string, 64)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			got <- string(b)
		}
	})
	var srv *httptest.Server
	if useTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv, got
}

func expectFrames(t *testing.T, ctx context.Context, got <-chan string, want []string) {
	t.Helper()
	for i, w := range want {
		select {
		case f := <-got:
			if f != w {
				t.Fatalf("frame %d is %.40q (%d bytes), want %.40q (%d bytes)", i, f, len(f), w, len(w))
			}
		case <-ctx.Done():
			t.Fatalf("frame %d (%.40q, %d bytes) never arrived", i, w, len(w))
		}
	}
}

// dialCorked opens a WebSocket to srv over the corking transport made from
// rt, and returns what the handshake reported of its socket.
func dialCorked(t *testing.T, ctx context.Context, srv *httptest.Server, rt http.RoundTripper) (c *websocket.Conn, cork *corkConn, overTLS bool) {
	t.Helper()
	hc := &http.Client{Transport: corkingTransport(rt)}
	u := "ws" + strings.TrimPrefix(srv.URL, "http") // wss for https
	c, _, err := websocket.Dial(traceCork(ctx, &cork, &overTLS), u, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, cork, overTLS
}

// A handshake over the corking transport reports its socket; frames the
// library writes while it is corked, and frames the stream gathers itself
// between them, reach a library server whole and in order once it is
// uncorked, and so do batches written by writeBatch.
func TestCorkedBatch(t *testing.T) {
	srv, got := echoFrames(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, cork, overTLS := dialCorked(t, ctx, srv, nil)
	if cork == nil || overTLS {
		t.Fatalf("the handshake reported corkConn %v, over TLS %v; want one, without TLS", cork, overTLS)
	}
	cork.cork()
	var want []string
	for i := range 3 {
		f := fmt.Sprint("library ", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(f)); err != nil {
			t.Fatal(err)
		}
		// Lengths that take each header form and masking remainder.
		g := fmt.Sprint("gathered ", i, strings.Repeat("x", []int{3, 200, 70000}[i]))
		cork.gatherText([]byte(g))
		want = append(want, f, g)
	}
	if n := len(cork.buf); n == 0 {
		t.Fatal("corked writes were not gathered")
	}
	if err := cork.uncork(); err != nil {
		t.Fatal(err)
	}
	expectFrames(t, ctx, got, want)

	l := &link{ws: c, cork: cork}
	if err := l.writeBatch([][]byte{[]byte("b1"), []byte("b2")}); err != nil {
		t.Fatal(err)
	}
	expectFrames(t, ctx, got, []string{"b1", "b2"})
}

// Over TLS the corkConn is under the encryption: the library frames, and
// writeBatch's frames still arrive whole.
func TestCorkedBatchOverTLS(t *testing.T) {
	srv, got := echoFrames(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, cork, overTLS := dialCorked(t, ctx, srv, srv.Client().Transport)
	if cork == nil || !overTLS {
		t.Fatalf("the handshake reported corkConn %v, over TLS %v; want one, over TLS", cork, overTLS)
	}
	l := &link{ws: c, cork: cork, overTLS: overTLS}
	want := []string{"t1", strings.Repeat("y", 300), "t3"}
	var frames [][]byte
	for _, w := range want {
		frames = append(frames, []byte(w))
	}
	if err := l.writeBatch(frames); err != nil {
		t.Fatal(err)
	}
	expectFrames(t, ctx, got, want)
}
