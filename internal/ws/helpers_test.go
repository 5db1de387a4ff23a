package ws_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/bus/localbus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

// env is one node: a Pebble store in a temporary directory, the local bus,
// the Service, and the WebSocket server behind a real HTTP listener.
type env struct {
	t     testing.TB
	store store.Store
	bus   bus.Bus
	svc   *messaging.Service
	ws    *ws.Server
	http  *httptest.Server
	url   string // ws://127.0.0.1:port/v1/ws
}

type envOpts struct {
	cfg ws.Config
	// wrapStore and wrapBus put a fake around the real thing.
	wrapStore func(store.Store) store.Store
	wrapBus   func(bus.Bus) bus.Bus
	// memory uses memstore instead of Pebble.
	memory bool
	// admission, when set, is the Service's admission controller.
	admission *admission.Controller
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	var st store.Store = memstore.New()
	if !o.memory {
		ps, err := pebblestore.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		st = ps
	}
	var s store.Store = st
	if o.wrapStore != nil {
		s = o.wrapStore(s)
	}
	var b bus.Bus = localbus.New()
	if o.wrapBus != nil {
		b = o.wrapBus(b)
	}
	svc := messaging.New(messaging.Config{Store: s, Bus: b, Admission: o.admission})
	cfg := o.cfg
	cfg.Service, cfg.Bus = svc, b
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv := ws.New(cfg)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/ws", srv)
	hs := httptest.NewServer(mux)
	e := &env{t: t, store: st, bus: b, svc: svc, ws: srv, http: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("ws Shutdown: %v", err)
		}
		hs.Close()
		b.Close()
		st.Close()
	})
	return e
}

func testLogger(t testing.TB) *slog.Logger {
	if tt, ok := t.(*testing.T); ok {
		return slog.New(slog.NewTextHandler(tt.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// app registers an app, and lets it talk to the apps named.
func (e *env) app(id string, interop ...string) {
	e.t.Helper()
	if _, err := e.svc.CreateApp(context.Background(), id, id); err != nil {
		e.t.Fatal(err)
	}
	if len(interop) > 0 {
		if _, err := e.svc.SetInterop(context.Background(), id, interop); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) token(addr chat.Address) string {
	e.t.Helper()
	tok, err := e.svc.MintToken(context.Background(), addr.App(), addr.User(), time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) direct(a, b chat.Address) string {
	e.t.Helper()
	c, _, err := e.svc.CreateConversation(context.Background(), a, []string{string(b)}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID
}

func (e *env) send(from chat.Address, conv, clientID, body string) messaging.Sent {
	e.t.Helper()
	s, err := e.svc.Send(context.Background(), from, messaging.SendRequest{ConversationID: conv, ClientID: clientID, Body: body})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// frame is any frame the server sends.
type frame struct {
	Type           string          `json:"type"`
	Ref            string          `json:"ref"`
	Update         *chat.Update    `json:"update"`
	Cursor         int64           `json:"cursor"`
	Message        *chat.Message   `json:"message"`
	ReadSeq        int64           `json:"read_seq"`
	Error          *chat.Error     `json:"error"`
	ConversationID string          `json:"conversation_id"`
	From           string          `json:"from"`
	InStream       bool            `json:"in_stream"`
	Raw            json.RawMessage `json:"-"`
}

// client is a test's raw WebSocket client.
type client struct {
	t  testing.TB
	c  *websocket.Conn
	id string
}

func (e *env) dial(tok string, after int64) *client {
	e.t.Helper()
	c, err := e.tryDial(tok, after)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) tryDial(tok string, after int64) (*client, error) {
	return e.tryDialQuery(tok, fmt.Sprintf("after=%d", after))
}

// tryDialQuery dials with the query string query.
func (e *env) tryDialQuery(tok, query string) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.url+"?"+query, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	cl := &client{t: e.t, c: c}
	e.t.Cleanup(func() { c.CloseNow() })
	return cl, nil
}

const readWait = 10 * time.Second

// next reads one frame.
func (c *client) next() frame {
	c.t.Helper()
	f, err := c.tryNext(readWait)
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

func (c *client) tryNext(wait time.Duration) (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, fmt.Errorf("frame %s: %w", b, err)
	}
	f.Raw = b
	return f, nil
}

// nextOf reads frames until one of type typ, failing on an error frame
// unless typ is "error". Frames of other types are returned in skipped.
func (c *client) nextOf(typ string) (f frame, skipped []frame) {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type == typ {
			return f, skipped
		}
		if f.Type == "error" {
			c.t.Fatalf("error frame while waiting for %s: %s", typ, f.Raw)
		}
		skipped = append(skipped, f)
	}
}

func (c *client) write(v any) {
	c.t.Helper()
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), readWait)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// closeStatus reads until the socket ends and returns its close status.
func (c *client) closeStatus() (websocket.StatusCode, string) {
	c.t.Helper()
	for {
		_, err := c.tryNext(readWait)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		c.t.Fatalf("socket ended without a close frame: %v", err)
	}
}

// readUpdates reads until ready, returning the updates before it and the
// ready cursor.
func (c *client) readUntilReady() ([]chat.Update, int64) {
	c.t.Helper()
	var ups []chat.Update
	for {
		f := c.next()
		switch f.Type {
		case "update":
			ups = append(ups, *f.Update)
		case "ready":
			return ups, f.Cursor
		case "typing":
		default:
			c.t.Fatalf("unexpected frame before ready: %s", f.Raw)
		}
	}
}

// checkOrder checks that updates have the cursors from, from+1, ...
func checkOrder(t testing.TB, ups []chat.Update, from int64) {
	t.Helper()
	for i, u := range ups {
		if u.Cursor != from+int64(i) {
			t.Fatalf("update %d has cursor %d, want %d (gap or duplicate)", i, u.Cursor, from+int64(i))
		}
	}
}

// rawDial opens a WebSocket by hand on a plain TCP connection and returns
// the connection right after the 101 answer, without any library state:
// a peer that never reads, never answers pings, or costs the test process
// almost nothing.
func rawDial(t testing.TB, rawURL, tok string) net.Conn {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := rawHandshake(nc, u, tok); err != nil {
		nc.Close()
		t.Fatal(err)
	}
	return nc
}

func rawHandshake(nc net.Conn, u *url.URL, tok string) error {
	req, key := upgradeRequest(u, tok)
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write([]byte(req)); err != nil {
		return err
	}
	// Read the answer byte by byte so that no frame after it is consumed
	// into a buffer we would then drop.
	return readUpgradeAnswer(bufio.NewReaderSize(oneByte{nc}, 16), key)
}

// upgradeRequest is a WebSocket upgrade request for u with tok, and its
// Sec-WebSocket-Key.
func upgradeRequest(u *url.URL, tok string) (req, key string) {
	var k [16]byte
	rand.Read(k[:])
	key = base64.StdEncoding.EncodeToString(k[:])
	req = "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
		"\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
	return req, key
}

// readUpgradeAnswer reads the server's answer to an upgrade request with
// key from r, and checks that it is a 101 with the right
// Sec-WebSocket-Accept.
func readUpgradeAnswer(r *bufio.Reader, key string) error {
	status, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.Contains(status, " 101 ") {
		return fmt.Errorf("handshake answered %q", strings.TrimSpace(status))
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	want := base64.StdEncoding.EncodeToString(sum[:])
	ok := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		if k, v, _ := strings.Cut(line, ":"); strings.EqualFold(k, "Sec-WebSocket-Accept") && strings.TrimSpace(v) == want {
			ok = true
		}
	}
	if !ok {
		return errors.New("handshake: Sec-WebSocket-Accept missing or wrong")
	}
	return nil
}

// oneByte reads at most one byte per call.
type oneByte struct{ r net.Conn }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

// waitFor polls cond until it holds or the deadline passes: for server
// state with no event to wait on (the count of open sessions).
func waitFor(t testing.TB, what string, wait time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
