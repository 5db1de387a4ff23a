package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/bus/localbus"
	"github.com/switchboard-chat/switchboard/internal/httpapi"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

const adminToken = "test-admin-token"

// node is a whole node in the test process: Pebble, the local bus, the
// REST API with the WebSocket endpoint mounted, on a real listener.
type node struct {
	url   string
	ws    *ws.Server
	admin *client.Admin
}

func startNode(t *testing.T, cfg ws.Config) *node {
	t.Helper()
	return startNodeWith(t, cfg, nil)
}

// startNodeWith is startNode with admission control (nil: none).
func startNodeWith(t *testing.T, cfg ws.Config, adm *admission.Controller) *node {
	t.Helper()
	st, err := pebblestore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := localbus.New()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := messaging.New(messaging.Config{Store: st, Bus: b, Logger: log, Admission: adm})
	api := httpapi.New(httpapi.Config{Service: svc, AdminToken: adminToken, Logger: log})
	cfg.Service, cfg.Bus, cfg.Logger = svc, b, log
	wss := ws.New(cfg)
	api.Handle("GET /v1/ws", wss)
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		wss.Shutdown(ctx)
		hs.Close()
		b.Close()
		st.Close()
	})
	return &node{url: hs.URL, ws: wss, admin: client.NewAdmin(hs.URL, adminToken, nil)}
}

// user makes apps as needed and returns a client for app:user.
func (n *node) user(t *testing.T, app, user string) *client.Client {
	t.Helper()
	ctx := context.Background()
	if _, err := n.admin.CreateApp(ctx, app, app); err != nil {
		var e *client.Error
		if !errors.As(err, &e) || e.Code != "conflict" {
			t.Fatal(err)
		}
	}
	tok, err := n.admin.Token(ctx, app, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return client.New(n.url, tok, &client.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
}

func TestREST(t *testing.T) {
	n := startNode(t, ws.Config{})
	ctx := context.Background()
	alice := n.user(t, "messenger", "alice")
	bob := n.user(t, "instagram", "bob")
	carol := n.user(t, "messenger", "carol")

	// Across apps only with interop on both sides.
	_, _, err := alice.CreateConversation(ctx, []string{"instagram:bob"}, "")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 403 || e.Code != "permission_denied" || e.Message == "" {
		t.Fatalf("without interop: %v, want 403 permission_denied", err)
	}
	if _, err := n.admin.SetInterop(ctx, "messenger", []string{"instagram"}); err != nil {
		t.Fatal(err)
	}
	app, err := n.admin.SetInterop(ctx, "instagram", []string{"messenger"})
	if err != nil || len(app.Interop) != 1 {
		t.Fatalf("SetInterop: %+v, %v", app, err)
	}
	apps, err := n.admin.Apps(ctx)
	if err != nil || len(apps) != 2 || apps[0].Secret != "" {
		t.Fatalf("Apps: %+v, %v", apps, err)
	}

	conv, created, err := alice.CreateConversation(ctx, []string{"instagram:bob"}, "")
	if err != nil || !created || conv.Kind != "direct" {
		t.Fatalf("create: %+v %v %v", conv, created, err)
	}
	if again, created, err := bob.CreateConversation(ctx, []string{"messenger:alice"}, ""); err != nil || created || again.ID != conv.ID {
		t.Fatalf("create again: %+v %v %v", again, created, err)
	}
	sent, err := alice.Send(ctx, conv.ID, "c1", "hello", map[string]any{"k": "v"})
	if err != nil || !sent.Created || sent.Message.Seq != 1 || sent.Cursor != 2 {
		t.Fatalf("send: %+v %v", sent, err)
	}
	if again, err := alice.Send(ctx, conv.ID, "c1", "other", nil); err != nil || again.Created || again.Message.Body != "hello" {
		t.Fatalf("send again: %+v %v", again, err)
	}
	if _, err := carol.Conversation(ctx, conv.ID); !errors.As(err, &e) || e.Status != 404 || e.Code != "not_found" {
		t.Fatalf("carol reads alice and bob's conversation: %v, want 404", err)
	}
	got, err := bob.Conversation(ctx, conv.ID)
	if err != nil || got.LastSeq != 1 {
		t.Fatalf("get: %+v %v", got, err)
	}
	msgs, err := bob.History(ctx, conv.ID, 0, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Body != "hello" || string(msgs[0].Meta) != `{"k":"v"}` {
		t.Fatalf("history: %+v %v", msgs, err)
	}
	if rs, err := bob.MarkRead(ctx, conv.ID, 1); err != nil || rs != 1 {
		t.Fatalf("read: %d %v", rs, err)
	}
	list, next, err := bob.Conversations(ctx, "", 10)
	if err != nil || len(list) != 1 || next != "" || list[0].ReadSeq != 1 || list[0].LastMessage == nil {
		t.Fatalf("list: %+v %q %v", list, next, err)
	}
	page, err := bob.Sync(ctx, 0, 0)
	if err != nil || len(page.Updates) != 3 || page.Cursor != 3 || page.More {
		t.Fatalf("sync: %+v %v", page, err)
	}

	group, _, err := alice.CreateConversation(ctx, []string{"instagram:bob"}, "team")
	if err != nil || group.Kind != "group" {
		t.Fatalf("group: %+v %v", group, err)
	}
	if g, err := alice.UpdateMembers(ctx, group.ID, []string{"messenger:carol"}, nil); err != nil || len(g.Members) != 3 {
		t.Fatalf("add: %+v %v", g, err)
	}
	if err := bob.Block(ctx, "messenger:alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, conv.ID, "c2", "blocked?", nil); !errors.As(err, &e) || e.Code != "permission_denied" {
		t.Fatalf("send to a blocker: %v, want permission_denied", err)
	}
	if err := bob.Unblock(ctx, "messenger:alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, conv.ID, "c3", "unblocked", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(n.url, "bad", nil).Sync(ctx, 0, 0); !errors.As(err, &e) || e.Status != 401 || e.Code != "unauthenticated" {
		t.Fatalf("bad token: %v, want 401", err)
	}
	if _, err := client.New(n.url, "bad", nil).Connect(ctx, 0); !errors.As(err, &e) || e.Status != 401 {
		t.Fatalf("stream with a bad token: %v, want 401", err)
	}
}

// pair makes alice (messenger) and bob (instagram), allowed to talk, and
// their direct conversation.
func pair(t *testing.T, n *node) (alice, bob *client.Client, conv string) {
	t.Helper()
	alice = n.user(t, "messenger", "alice")
	bob = n.user(t, "instagram", "bob")
	ctx := context.Background()
	n.admin.SetInterop(ctx, "messenger", []string{"instagram"})
	n.admin.SetInterop(ctx, "instagram", []string{"messenger"})
	c, _, err := alice.CreateConversation(ctx, []string{"instagram:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return alice, bob, c.ID
}

func TestStreamLive(t *testing.T) {
	n := startNode(t, ws.Config{})
	alice, bob, conv := pair(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	as := connect(ctx, t, alice)
	bs := connect(ctx, t, bob)
	waitState(t, bs, client.Live)

	out, err := as.Send(ctx, conv, "hi", map[string]any{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := out.Wait(ctx)
	if err != nil || sent.Message.Body != "hi" || sent.Message.Seq != 1 {
		t.Fatalf("outbox: %+v %v", sent, err)
	}
	u := nextUpdate(t, bs, "message")
	if u.Message.Body != "hi" || u.Message.Sender != "messenger:alice" {
		t.Fatalf("bob got %+v", u.Message)
	}
	if rs, err := bs.Read(ctx, conv, 1); err != nil || rs != 1 {
		t.Fatalf("read: %d %v", rs, err)
	}
	if u := nextUpdate(t, bs, "read"); u.Reader != "instagram:bob" || u.Seq != 1 {
		t.Fatalf("read update: %+v", u)
	}
	if err := as.Typing(conv); err != nil {
		t.Fatal(err)
	}
	for ev := range bs.Events() {
		if ev.Typing != nil {
			if ev.Typing.From != "messenger:alice" || ev.Typing.ConversationID != conv {
				t.Fatalf("typing: %+v", ev.Typing)
			}
			break
		}
	}
	// A non-retryable error resolves the message with it.
	bad, err := as.Send(ctx, "nope", "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	var e *client.Error
	if _, err := bad.Wait(ctx); !errors.As(err, &e) || e.Code != "not_found" {
		t.Fatalf("send to an unknown conversation: %v, want not_found", err)
	}
}

// The stream asks the server for acks in the place of its own messages'
// updates (merge_acks): its events still hold every update once, the
// sender's own messages included, in cursor order, each at the cursor its
// send was answered with.
func TestStreamOwnMessagesFromMergedAcks(t *testing.T) {
	n := startNode(t, ws.Config{})
	alice, _, conv := pair(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	as := connect(ctx, t, alice)
	waitState(t, as, client.Live)
	const count = 30
	outs := make([]*client.Outgoing, count)
	for i := range outs {
		var err error
		if outs[i], err = as.Send(ctx, conv, fmt.Sprint("m", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	cursorOf := map[int64]int64{} // seq -> cursor answered
	for _, o := range outs {
		sent, err := o.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cursorOf[sent.Message.Seq] = sent.Cursor
	}
	if got := n.ws.AcksInStream(); got != count {
		t.Errorf("%d acks stood in for updates, want %d: the stream did not ask for merge_acks", got, count)
	}
	var last int64
	for seq := int64(1); seq <= count; seq++ {
		u := nextUpdate(t, as, "message")
		if u.Cursor <= last || u.Message.Seq != seq || u.Message.Body != fmt.Sprint("m", seq-1) || u.Cursor != cursorOf[seq] {
			t.Fatalf("update %+v (message %+v) after cursor %d; want seq %d at cursor %d", u, u.Message, last, seq, cursorOf[seq])
		}
		last = u.Cursor
	}
}

// The stream answers the server's keepalive pings (it reads its frames
// itself, so it answers them itself): a stream pinged every 20 ms, dropped
// after 100 ms without a pong, stays connected, and still delivers.
func TestStreamAnswersPings(t *testing.T) {
	n := startNode(t, ws.Config{PingInterval: 20 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
	alice, bob, conv := pair(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bs := connect(ctx, t, bob)
	waitState(t, bs, client.Live)
	quiet := time.After(time.Second) // 50 pings
	for waiting := true; waiting; {
		select {
		case ev := <-bs.Events():
			if ev.State != nil {
				t.Fatalf("the stream went %v (%v) while pinged; want it to stay live", ev.State.State, ev.State.Err)
			}
		case <-quiet:
			waiting = false
		}
	}
	if _, err := alice.Send(ctx, conv, "c-ping", "still here", nil); err != nil {
		t.Fatal(err)
	}
	if u := nextUpdate(t, bs, "message"); u.Message.Body != "still here" {
		t.Fatalf("bob got %+v", u.Message)
	}
}

// connect opens c's stream from the start; it is closed when the test
// ends.
func connect(ctx context.Context, t *testing.T, c *client.Client) *client.Stream {
	t.Helper()
	s, err := c.Connect(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitState(t *testing.T, s *client.Stream, want client.State) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatalf("stream closed waiting for %v", want)
			}
			if ev.State != nil && ev.State.State == want {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for state %v", want)
		}
	}
}

func nextUpdate(t *testing.T, s *client.Stream, typ string) *client.Update {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatalf("stream closed waiting for a %s update", typ)
			}
			if ev.Update != nil && ev.Update.Type == typ {
				return ev.Update
			}
		case <-timeout:
			t.Fatalf("timed out waiting for a %s update", typ)
		}
	}
}

// proxy forwards TCP connections to target and can cut them all.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	cuts   int
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(u, c) })
		p.wg.Go(func() { pipe(c, u) })
	}
}

// cut drops every connection in flight, without a WebSocket goodbye.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) > 0 {
		p.cuts++
	}
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

// While the connections are cut at random, every message alice puts in her
// outbox is stored once and acknowledged, and bob's stream delivers each
// once, in order.
func TestOutboxExactlyOnceUnderCuts(t *testing.T) {
	n := startNode(t, ws.Config{})
	_, bob, conv := pair(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := newProxy(t, n.url[len("http://"):])
	opts := &client.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	atok, btok := token(t, n, "messenger", "alice"), token(t, n, "instagram", "bob")
	as := connect(ctx, t, client.New(p.url(), atok, opts))
	// alice's own stream carries her messages too; a stream's events must
	// be consumed (acks are read from the same socket).
	go func() {
		for range as.Events() {
		}
	}()
	bs := connect(ctx, t, client.New(p.url(), btok, opts))

	// At least minTotal messages, and on until minCuts cuts happened, so
	// that however fast the node stores them, the sends span reconnects.
	const minTotal, minCuts, maxTotal = 200, 5, 20000
	cutsSoFar := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.cuts
	}
	stopCuts := make(chan struct{})
	var cutter sync.WaitGroup
	cutter.Go(func() {
		for {
			select {
			case <-stopCuts:
				return
			case <-time.After(time.Duration(5+rand.IntN(40)) * time.Millisecond):
				p.cut()
			}
		}
	})

	var outs []*client.Outgoing
	for i := 0; i < minTotal || cutsSoFar() < minCuts; i++ {
		if i == maxTotal {
			t.Fatalf("%d messages sent and only %d cuts", i, cutsSoFar())
		}
		o, err := as.Send(ctx, conv, fmt.Sprint("m", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
		if i%10 == 0 {
			time.Sleep(time.Millisecond) // spread the sends across cuts
		}
	}
	total := len(outs)
	seqs := map[int64]string{}
	for i, o := range outs {
		sent, err := o.Wait(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if sent.Message.Body != fmt.Sprint("m", i) {
			t.Fatalf("message %d acked with body %q", i, sent.Message.Body)
		}
		if prev, dup := seqs[sent.Message.Seq]; dup {
			t.Fatalf("seq %d acked for %q and %q", sent.Message.Seq, prev, sent.Message.Body)
		}
		seqs[sent.Message.Seq] = sent.Message.Body
	}

	// bob: every message once, in cursor order, while the cuts go on.
	got := map[string]int{}
	var last int64
	for len(got) < total {
		select {
		case ev := <-bs.Events():
			if ev.Update == nil {
				continue
			}
			if ev.Update.Cursor <= last {
				t.Fatalf("cursor %d after %d", ev.Update.Cursor, last)
			}
			if last > 0 && ev.Update.Cursor != last+1 {
				t.Fatalf("gap: cursor %d after %d", ev.Update.Cursor, last)
			}
			last = ev.Update.Cursor
			if ev.Update.Message != nil {
				got[ev.Update.Message.Body]++
			}
		case <-ctx.Done():
			t.Fatalf("bob got %d of %d messages", len(got), total)
		}
	}
	close(stopCuts)
	cutter.Wait()
	for body, k := range got {
		if k != 1 {
			t.Fatalf("bob got %q %d times", body, k)
		}
	}
	// The store has each message once: seqs 1..total, nothing more.
	hist, err := bob.History(ctx, conv, 0, 1)
	if err != nil || len(hist) != 1 || hist[0].Seq != int64(total) {
		t.Fatalf("last stored message: %+v %v, want seq %d", hist, err, total)
	}
	cuts := cutsSoFar()
	if cuts < minCuts {
		t.Fatalf("only %d cuts happened; the test did not exercise reconnects", cuts)
	}
	t.Logf("%d messages through %d cuts", total, cuts)
}

func token(t *testing.T, n *node, app, user string) string {
	t.Helper()
	tok, err := n.admin.Token(context.Background(), app, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
