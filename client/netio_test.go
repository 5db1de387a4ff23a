package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
	l := newLink(c, cork, overTLS)
	if l.frames != nil {
		t.Fatal("over TLS the stream reads its frames itself; want the library to")
	}
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

// Without TLS the stream reads its frames from the socket itself: the
// frames that came with the handshake's response, a message in parts, a ping it
// answers while corked and uncorked, and the close frame it echoes, which
// it reports as the library does.
func TestStreamReadsFramesItself(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serverDone := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			serverDone <- err
			return
		}
		defer c.CloseNow()
		// At once, so that they may come with the response's header.
		for _, m := range []string{"f1", strings.Repeat("z", 70000)} {
			if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
				serverDone <- err
				return
			}
		}
		fw, err := c.Writer(ctx, websocket.MessageText)
		if err != nil {
			serverDone <- err
			return
		}
		// Past the library's buffer: written in fragments.
		fw.Write([]byte(strings.Repeat("p", 9000)))
		fw.Write([]byte("q"))
		fw.Close()
		// Ping needs a reader for its pong; CloseRead drops data frames.
		rctx := c.CloseRead(ctx)
		for range 2 {
			if err := c.Ping(ctx); err != nil {
				serverDone <- fmt.Errorf("ping: %w", err)
				return
			}
		}
		_ = rctx
		serverDone <- c.Close(4000, "bye")
	}))
	t.Cleanup(srv.Close)
	c, cork, overTLS := dialCorked(t, ctx, srv, nil)
	l := newLink(c, cork, overTLS)
	if l.frames == nil {
		t.Fatal("the stream reads its frames through the library; want from the socket")
	}
	var buf []byte
	for _, want := range []string{"f1", strings.Repeat("z", 70000), strings.Repeat("p", 9000) + "q"} {
		var err error
		if buf, err = l.readFrame(buf[:0]); err != nil || string(buf) != want {
			t.Fatalf("read %.20q (%d bytes), %v; want %.20q", buf, len(buf), err, want)
		}
	}
	cork.cork() // the first pong waits in the batch
	go func() {
		time.Sleep(100 * time.Millisecond)
		cork.uncork()
	}()
	_, err := l.readFrame(buf[:0])
	if websocket.CloseStatus(err) != 4000 {
		t.Fatalf("at the close: %v, want the peer's close 4000", err)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce); ce.Reason != "bye" {
		t.Errorf("close reason %q, want \"bye\"", ce.Reason)
	}
	if err := <-serverDone; err != nil {
		t.Fatalf("server: %v (the pongs or the close echo did not come)", err)
	}
}

// The bytes read past the handshake's response are the first frames; a tap
// that does not hold a 101 response leaves reading to the library.
func TestTakeOver(t *testing.T) {
	for _, c := range []struct {
		read    string
		pending string
		ok      bool
	}{
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi", "\x81\x02hi", true},
		{"HTTP/1.1 101 Switching Protocols\r\n\r\n", "", true},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: web", "", false},
		{"HTTP/1.1 403 Forbidden\r\n\r\nno", "", false},
	} {
		a, b := net.Pipe()
		cc := &corkConn{Conn: a}
		cc.startTap()
		go func() {
			b.Write([]byte(c.read))
			b.Close()
		}()
		io.Copy(io.Discard, cc)
		pending, ok := cc.takeOver()
		if string(pending) != c.pending || ok != c.ok {
			t.Errorf("after %q: %q, %v; want %q, %v", c.read, pending, ok, c.pending, c.ok)
		}
		if cc.tapping || cc.tap != nil {
			t.Errorf("after %q: still tapping", c.read)
		}
		a.Close()
	}
}
