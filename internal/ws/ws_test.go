package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

var (
	alice = chat.Address("messenger:alice")
	bob   = chat.Address("instagram:bob")
	carol = chat.Address("messenger:carol")
)

// twoApps makes messenger and instagram, which allow each other, and a
// direct conversation between alice and bob.
func twoApps(e *env) string {
	e.app("messenger")
	e.app("instagram", "messenger")
	if _, err := e.svc.SetInterop(context.Background(), "messenger", []string{"instagram"}); err != nil {
		e.t.Fatal(err)
	}
	return e.direct(alice, bob)
}

func TestAuth(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app("messenger")
	tok := e.token(alice)
	get := func(url string, header http.Header) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header = header
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := e.http.URL + "/v1/ws"
	for _, tc := range []struct {
		name   string
		url    string
		header http.Header
		status int
		code   string
	}{
		{"no token", base, http.Header{}, 401, chat.Unauthenticated},
		{"bad token", base, http.Header{"Authorization": {"Bearer nope"}}, 401, chat.Unauthenticated},
		{"not bearer", base, http.Header{"Authorization": {"Basic " + tok}}, 401, chat.Unauthenticated},
		{"bad after", base + "?after=-1", http.Header{"Authorization": {"Bearer " + tok}}, 400, chat.InvalidArgument},
		{"after not a number", base + "?after=x&token=" + tok, http.Header{}, 400, chat.InvalidArgument},
		{"merge_acks not a boolean", base + "?merge_acks=maybe&token=" + tok, http.Header{}, 400, chat.InvalidArgument},
	} {
		status, body := get(tc.url, tc.header)
		var ans struct{ Error chat.Error }
		if err := json.Unmarshal([]byte(body), &ans); err != nil || status != tc.status || ans.Error.Code != tc.code || ans.Error.Message == "" {
			t.Errorf("%s: got %d %s, want %d with code %s", tc.name, status, body, tc.status, tc.code)
		}
	}

	// ?token= works as well as the header.
	c, _, err := websocket.Dial(context.Background(), e.url+"?token="+tok, nil)
	if err != nil {
		t.Fatalf("dial with ?token=: %v", err)
	}
	defer c.CloseNow()
	cl := &client{t: t, c: c}
	if ups, cur := cl.readUntilReady(); len(ups) != 0 || cur != 0 {
		t.Fatalf("empty stream: got %d updates and ready %d, want none and 0", len(ups), cur)
	}
}

func TestBacklogThenReady(t *testing.T) {
	e := newEnv(t, envOpts{cfg: ws.Config{SyncPage: 3}}) // several pages
	conv := twoApps(e)
	for i := range 7 {
		e.send(alice, conv, fmt.Sprint("c", i), fmt.Sprint("hello ", i))
	}
	// bob's stream: the conversation (1), then 7 messages (2..8).
	b := e.dial(e.token(bob), 0)
	ups, cur := b.readUntilReady()
	if len(ups) != 8 || cur != 8 {
		t.Fatalf("got %d updates, ready %d; want 8 and 8", len(ups), cur)
	}
	checkOrder(t, ups, 1)
	if ups[0].Type != chat.UpdateConversation || ups[0].Conversation.ID != conv {
		t.Errorf("first update is %+v, want the conversation", ups[0])
	}
	for i, u := range ups[1:] {
		if u.Type != chat.UpdateMessage || u.Message.Body != fmt.Sprint("hello ", i) || u.Message.Seq != int64(i+1) {
			t.Errorf("update %d: %+v, want message %d", i+1, u, i+1)
		}
	}

	// Resuming with after skips what the client has.
	b2 := e.dial(e.token(bob), 5)
	ups, cur = b2.readUntilReady()
	if len(ups) != 3 || cur != 8 {
		t.Fatalf("after=5: got %d updates, ready %d; want 3 and 8", len(ups), cur)
	}
	checkOrder(t, ups, 6)
}

func TestLiveAcrossApps(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := twoApps(e)
	a := e.dial(e.token(alice), 1)
	b := e.dial(e.token(bob), 1)
	a.readUntilReady()
	b.readUntilReady()

	a.write(map[string]any{"type": "send", "ref": "r1", "conversation_id": conv, "client_id": "c-1", "body": "hi bob", "meta": map[string]any{"k": 1}})
	ack, skipped := a.nextOf("ack")
	if ack.Ref != "r1" || ack.Message == nil || ack.Message.Body != "hi bob" || ack.Message.Seq != 1 || ack.Cursor != 2 {
		t.Fatalf("ack: %s", ack.Raw)
	}
	if string(ack.Message.Meta) != `{"k":1}` {
		t.Errorf("ack meta %s, want {\"k\":1}", ack.Message.Meta)
	}
	// alice's own stream has the message too (other devices learn it).
	own := skipped
	if len(own) == 0 {
		f, _ := a.nextOf("update")
		own = append(own, f)
	}
	if own[0].Type != "update" || own[0].Update.Cursor != 2 || own[0].Update.Message.Body != "hi bob" {
		t.Errorf("alice's own update: %s", own[0].Raw)
	}
	f, _ := b.nextOf("update")
	if f.Update.Cursor != 2 || f.Update.Message.Sender != alice || f.Update.Message.Body != "hi bob" {
		t.Fatalf("bob got %s", f.Raw)
	}

	// The same client_id again answers the first result, and nothing new
	// reaches bob.
	a.write(map[string]any{"type": "send", "ref": "r2", "conversation_id": conv, "client_id": "c-1", "body": "ignored"})
	ack2, _ := a.nextOf("ack")
	if ack2.Ref != "r2" || ack2.Message.Seq != 1 || ack2.Cursor != 2 || ack2.Message.Body != "hi bob" {
		t.Fatalf("repeated client_id: %s", ack2.Raw)
	}

	// Read receipts reach both; the ack carries read_seq.
	b.write(map[string]any{"type": "read", "ref": "r3", "conversation_id": conv, "seq": 1})
	ack3, skipped := b.nextOf("ack")
	if ack3.Ref != "r3" || ack3.ReadSeq != 1 {
		t.Fatalf("read ack: %s", ack3.Raw)
	}
	var rd frame
	if len(skipped) > 0 {
		rd = skipped[0]
	} else {
		rd, _ = b.nextOf("update")
	}
	if rd.Update.Type != chat.UpdateRead || rd.Update.Reader != bob || rd.Update.Cursor != 3 {
		t.Errorf("bob's read update: %s", rd.Raw)
	}
	ra, _ := a.nextOf("update")
	if ra.Update.Type != chat.UpdateRead || ra.Update.Reader != bob || ra.Update.Seq != 1 {
		t.Errorf("alice's read update: %s", ra.Raw)
	}

	// Typing reaches the other member, not the typist.
	b.write(`{"type":"typing","conversation_id":"` + conv + `"}`)
	ty, _ := a.nextOf("typing")
	if ty.ConversationID != conv || ty.From != string(bob) {
		t.Errorf("typing: %s", ty.Raw)
	}

	// Errors name the ref: a conversation carol is not in, a bad body.
	a.write(map[string]any{"type": "send", "ref": "r4", "conversation_id": "nope", "client_id": "c-2", "body": "x"})
	er, _ := a.nextOf("error")
	if er.Ref != "r4" || er.Error.Code != chat.NotFound {
		t.Errorf("send to unknown conversation: %s", er.Raw)
	}
	a.write(map[string]any{"type": "send", "ref": "r5", "conversation_id": conv, "client_id": "c-3", "body": strings.Repeat("x", chat.MaxBodyBytes+1)})
	er, _ = a.nextOf("error")
	if er.Ref != "r5" || er.Error.Code != chat.PayloadTooLarge {
		t.Errorf("oversized body: %s", er.Raw)
	}
	a.write(`{"type":"ping","ref":"p1"}`)
	if p, _ := a.nextOf("pong"); p.Ref != "p1" {
		t.Errorf("pong: %s", p.Raw)
	}
}

func TestNoInteropNoConversation(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app("messenger")
	e.app("instagram")
	if _, _, err := e.svc.CreateConversation(context.Background(), alice, []string{string(bob)}, ""); chat.ErrorCode(err) != chat.PermissionDenied {
		t.Fatalf("conversation across apps without interop: %v, want permission_denied", err)
	}
}

func TestMultiDevice(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := twoApps(e)
	tok := e.token(bob)
	devices := []*client{e.dial(tok, 0), e.dial(tok, 0), e.dial(tok, 0)}
	for _, d := range devices {
		d.readUntilReady()
	}
	a := e.dial(e.token(alice), 0)
	a.readUntilReady()
	const n = 30
	for i := range n {
		a.write(map[string]any{"type": "send", "ref": fmt.Sprint(i), "conversation_id": conv, "client_id": fmt.Sprint("c", i), "body": fmt.Sprint("m", i)})
	}
	for di, d := range devices {
		var ups []chat.Update
		for len(ups) < n {
			f, _ := d.nextOf("update")
			ups = append(ups, *f.Update)
		}
		checkOrder(t, ups, 2)
		for i, u := range ups {
			// Pipelined sends to one conversation are stored in the
			// order they were sent.
			if u.Message.Seq != int64(i+1) || u.Message.Body != fmt.Sprint("m", i) {
				t.Fatalf("device %d: update %d carries seq %d body %q", di, i, u.Message.Seq, u.Message.Body)
			}
		}
	}
}

// While alice keeps sending, bob disconnects and resumes again and again;
// what he sees, put together, is his whole stream with no gap and no
// duplicate.
func TestResumeNoGapNoDuplicate(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := twoApps(e)
	const n = 150
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			if _, err := e.svc.Send(context.Background(), alice, sendReq(conv, i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	tok := e.token(bob)
	var all []chat.Update
	var last int64
	for round := 0; last < n+1; round++ {
		c := e.dial(tok, last)
		// Read a few frames, then drop the socket without a goodbye.
		for k := 0; k < 20 && last < n+1; k++ {
			f := c.next()
			if f.Type == "update" {
				all = append(all, *f.Update)
				last = f.Update.Cursor
			}
		}
		c.c.CloseNow()
		if round > 200 {
			t.Fatal("too many rounds")
		}
	}
	<-sent
	checkOrder(t, all, 1)
	if len(all) != n+1 {
		t.Fatalf("got %d updates, want %d", len(all), n+1)
	}
}

func sendReq(conv string, i int) messaging.SendRequest {
	return messaging.SendRequest{ConversationID: conv, ClientID: fmt.Sprint("c", i), Body: fmt.Sprint("m", i)}
}

func TestMalformedFramesKeepSocket(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app("messenger")
	c := e.dial(e.token(alice), 0)
	c.readUntilReady()
	for _, tc := range []struct {
		frame string
		ref   string
	}{
		{`not json`, ""},
		{`[1,2]`, ""},
		{`{"type":"dance","ref":"x1"}`, "x1"},
		{`{"ref":"x2"}`, "x2"},
		{`{"type":"read","ref":"x3","seq":"three"}`, "x3"},
	} {
		c.write(tc.frame)
		f := c.next()
		if f.Type != "error" || f.Ref != tc.ref || f.Error == nil || f.Error.Code != chat.InvalidArgument {
			t.Errorf("%s: got %s, want an invalid_argument error with ref %q", tc.frame, f.Raw, tc.ref)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), readWait)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageBinary, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if f := c.next(); f.Type != "error" || f.Error.Code != chat.InvalidArgument {
		t.Errorf("binary frame: got %s", f.Raw)
	}
	// Still usable.
	c.write(`{"type":"ping","ref":"ok"}`)
	if f := c.next(); f.Type != "pong" || f.Ref != "ok" {
		t.Fatalf("after bad frames: got %s, want pong", f.Raw)
	}
}

func TestGarbageFloodCloses(t *testing.T) {
	e := newEnv(t, envOpts{cfg: ws.Config{MaxBadFrames: 5}})
	e.app("messenger")
	c := e.dial(e.token(alice), 0)
	c.readUntilReady()
	for range 20 {
		// The server may close before all are written.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c.c.Write(ctx, websocket.MessageText, []byte("garbage"))
		cancel()
	}
	errs := 0
	for {
		f, err := c.tryNext(readWait)
		if err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
				t.Fatalf("closed with %v (%v), want policy violation", s, err)
			}
			break
		}
		if f.Type == "error" {
			errs++
		}
	}
	if errs != 5 {
		t.Errorf("got %d error frames before the close, want 5", errs)
	}
	waitFor(t, "the session to end", 5*time.Second, func() bool { return e.ws.Connections() == 0 })
}

func TestOversizeFrameCloses(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app("messenger")
	c := e.dial(e.token(alice), 0)
	c.readUntilReady()
	big := `{"type":"ping","ref":"` + strings.Repeat("x", 64<<10) + `"}`
	ctx, cancel := context.WithTimeout(context.Background(), readWait)
	defer cancel()
	c.c.Write(ctx, websocket.MessageText, []byte(big))
	if s, _ := c.closeStatus(); s != websocket.StatusMessageTooBig {
		t.Fatalf("closed with %v, want message too big", s)
	}
}

// A peer that completes the handshake and then goes silent (never answers
// pings) is dropped.
func TestHalfOpenDropped(t *testing.T) {
	e := newEnv(t, envOpts{cfg: ws.Config{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond}})
	e.app("messenger")
	nc := rawDial(t, e.url, e.token(alice))
	defer nc.Close()
	waitFor(t, "the session to start", 5*time.Second, func() bool { return e.ws.Connections() == 1 })
	waitFor(t, "the silent peer to be dropped", 5*time.Second, func() bool { return e.ws.Connections() == 0 })
	// The socket is closed: reading drains what was sent, then ends.
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading the dropped socket: %v, want EOF or reset", err)
	}

	// A live client that answers pings stays.
	c := e.dial(e.token(alice), 0)
	c.readUntilReady()
	go func() {
		for {
			if _, err := c.tryNext(time.Minute); err != nil {
				return
			}
		}
	}()
	time.Sleep(400 * time.Millisecond) // several ping intervals
	if n := e.ws.Connections(); n != 1 {
		t.Fatalf("%d sessions after pings answered, want 1", n)
	}
}

// chaosBus delivers a user's updates out of order and loses some, as a bus
// under load or across nodes may.
type chaosBus struct {
	bus.Bus
	mu   sync.Mutex
	user chat.Address
	held []bus.Event
	n    int
}

func (b *chaosBus) Publish(ctx context.Context, events ...bus.Event) error {
	var out []bus.Event
	b.mu.Lock()
	for _, ev := range events {
		if ev.User != b.user || ev.Update == nil {
			out = append(out, ev)
			continue
		}
		b.n++
		switch {
		case b.n%7 == 0: // lost
		case b.n%3 == 0: // held back, published after the next one
			b.held = append(b.held, ev)
		default:
			out = append(out, ev)
			out = append(out, b.held...)
			b.held = nil
		}
	}
	b.mu.Unlock()
	return b.Bus.Publish(ctx, out...)
}

func TestOutOfOrderAndLostEvents(t *testing.T) {
	for _, gap := range []time.Duration{-1, 20 * time.Millisecond} {
		t.Run(fmt.Sprint("GapWait=", gap), func(t *testing.T) {
			e := newEnv(t, envOpts{
				cfg:     ws.Config{GapWait: gap},
				wrapBus: func(b bus.Bus) bus.Bus { return &chaosBus{Bus: b, user: bob} },
			})
			conv := twoApps(e)
			b := e.dial(e.token(bob), 0)
			b.readUntilReady()
			const n = 100
			for i := range n {
				e.send(alice, conv, fmt.Sprint("c", i), fmt.Sprint("m", i))
			}
			var ups []chat.Update
			for len(ups) < n {
				f, _ := b.nextOf("update")
				ups = append(ups, *f.Update)
			}
			checkOrder(t, ups, 2)
		})
	}
}

// blockingStore holds AppendMessage until released, to catch a send in
// flight.
type blockingStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.AppendMessage(ctx, m)
}

func TestShutdownAnswersInFlightThenGoesAway(t *testing.T) {
	bs := &blockingStore{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, envOpts{wrapStore: func(s store.Store) store.Store { bs.Store = s; return bs }})
	conv := twoApps(e)
	a := e.dial(e.token(alice), 1)
	a.readUntilReady()
	idle := e.dial(e.token(bob), 1)
	idle.readUntilReady()

	a.write(map[string]any{"type": "send", "ref": "r1", "conversation_id": conv, "client_id": "c1", "body": "in flight"})
	<-bs.entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.ws.Shutdown(ctx)
	}()
	// New sockets are refused once Shutdown began.
	waitFor(t, "new sockets to be refused", 5*time.Second, func() bool {
		c, err := e.tryDial(e.token(carol), 0)
		if c != nil {
			c.c.CloseNow()
		}
		return err != nil && strings.Contains(err.Error(), "503")
	})
	close(bs.release)

	ack, _ := a.nextOf("ack")
	if ack.Ref != "r1" || ack.Message == nil || ack.Message.Body != "in flight" {
		t.Fatalf("in-flight send: %s", ack.Raw)
	}
	if s, reason := a.closeStatus(); s != websocket.StatusGoingAway || !strings.Contains(reason, "after=") {
		t.Errorf("sender closed with %v %q, want going away with a cursor", s, reason)
	}
	if s, _ := idle.closeStatus(); s != websocket.StatusGoingAway {
		t.Errorf("idle socket closed with %v, want going away", s)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := e.ws.Connections(); n != 0 {
		t.Fatalf("%d sessions after Shutdown", n)
	}
}

// A client that never reads is disconnected once its queue is full, and
// the server's memory does not grow with what is sent to it.
func TestSlowReaderDisconnectedMemoryBounded(t *testing.T) {
	e := newEnv(t, envOpts{cfg: ws.Config{QueueFrames: 256, QueueBytes: 256 << 10, WriteTimeout: 30 * time.Second}})
	conv := twoApps(e)
	nc := rawDial(t, e.url+"?after=1", e.token(bob))
	defer nc.Close()
	waitFor(t, "bob's session", 5*time.Second, func() bool { return e.ws.Connections() == 1 })

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	body := strings.Repeat("x", chat.MaxBodyBytes)
	// Warm the store and the server up, then measure from there.
	for i := range 32 {
		e.send(alice, conv, fmt.Sprint("w", i), body)
	}
	before := heap()
	var peak uint64
	const senders, perSender = 8, 400 // 3200 messages, 13 MB of bodies
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				if _, err := e.svc.Send(context.Background(), alice, messaging.SendRequest{ConversationID: conv, ClientID: fmt.Sprint(s, "-", i), Body: body}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	waitFor(t, "the slow reader to be dropped", 60*time.Second, func() bool { return e.ws.Connections() == 0 })
	close(stop)
	<-sampled
	after := heap()
	t.Logf("heap before %d KiB, peak %d KiB, after %d KiB", before>>10, peak>>10, after>>10)
	// Unbounded, the queue alone would hold most of the 13 MB sent.
	const bound = 8 << 20
	if after > before+bound/2 {
		t.Errorf("heap grew by %d KiB after the slow reader left", (after-before)>>10)
	}
	if peak > before+bound {
		t.Errorf("heap peaked %d KiB above the start, want at most %d KiB", (peak-before)>>10, bound>>10)
	}
}

// A client that falls behind and then reads again finds, after the frames
// written before, a close naming the cursor to resume from; resuming there
// gives the rest with no gap.
func TestTooSlowCloseNamesCursor(t *testing.T) {
	e := newEnv(t, envOpts{cfg: ws.Config{QueueFrames: 64, QueueBytes: 64 << 10, SlowCloseGrace: time.Minute, WriteTimeout: time.Minute}})
	conv := twoApps(e)
	tok := e.token(bob)
	b := e.dial(tok, 1)
	b.readUntilReady()
	body := strings.Repeat("y", chat.MaxBodyBytes)
	const senders, perSender = 8, 250 // 2000 messages, 8 MB: past the TCP buffers
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				if _, err := e.svc.Send(context.Background(), alice, messaging.SendRequest{ConversationID: conv, ClientID: fmt.Sprint(s, "-", i), Body: body}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var ups []chat.Update
	var status websocket.StatusCode
	var reason string
	for {
		f, err := b.tryNext(readWait)
		if err != nil {
			status, reason = websocket.CloseStatus(err), err.Error()
			break
		}
		if f.Type == "update" {
			ups = append(ups, *f.Update)
		}
	}
	if status != websocket.StatusTryAgainLater || len(ups) == 0 {
		t.Fatalf("closed with %v (%s) after %d updates, want try again later", status, reason, len(ups))
	}
	checkOrder(t, ups, 2)
	last := ups[len(ups)-1].Cursor
	if want := fmt.Sprintf("too slow; reconnect with after=%d", last); !strings.Contains(reason, want) {
		t.Fatalf("close reason %q, want %q", reason, want)
	}
	b2 := e.dial(tok, last)
	rest, cur := b2.readUntilReady()
	checkOrder(t, rest, last+1)
	if cur != senders*perSender+1 {
		t.Fatalf("ready at %d, want %d", cur, senders*perSender+1)
	}
}

// TestPipelinedSendsKeepOrder pipelines sends to one conversation, with a
// bad one and a read receipt among them: the server takes the queued sends
// together, but each gets its own answer, and they are stored in the order
// written.
func TestPipelinedSendsKeepOrder(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := twoApps(e)
	a := e.dial(e.token(alice), 1)
	b := e.dial(e.token(bob), 1)
	a.readUntilReady()
	b.readUntilReady()

	const n = 60
	for i := range n {
		f := map[string]any{"type": "send", "ref": fmt.Sprintf("s%d", i), "conversation_id": conv, "client_id": fmt.Sprintf("c-%d", i), "body": fmt.Sprintf("m%d", i)}
		switch i {
		case 10:
			f["body"] = "" // refused alone
		case 20:
			f["client_id"] = "c-5" // a repeat of an earlier one
		case 30:
			f = map[string]any{"type": "read", "ref": "s30", "conversation_id": conv, "seq": 1}
		}
		a.write(f)
	}
	answers := map[string]frame{}
	for len(answers) < n {
		f := a.next()
		if f.Type == "ack" || f.Type == "error" {
			answers[f.Ref] = f
		}
	}
	var seq int64
	for i := range n {
		f := answers[fmt.Sprintf("s%d", i)]
		switch i {
		case 10:
			if f.Type != "error" || f.Error.Code != chat.InvalidArgument {
				t.Errorf("the empty send: %s", f.Raw)
			}
		case 20:
			if f.Type != "ack" || f.Message.Seq != 6 || f.Message.Body != "m5" {
				t.Errorf("the repeat of c-5: %s", f.Raw)
			}
		case 30:
			if f.Type != "ack" || f.ReadSeq < 1 {
				t.Errorf("the read: %s", f.Raw)
			}
		default:
			seq++
			if f.Type != "ack" || f.Message.Seq != seq || f.Message.Body != fmt.Sprintf("m%d", i) {
				t.Fatalf("send %d: %s, want seq %d", i, f.Raw, seq)
			}
		}
	}
	// Bob sees every message once, in order, then alice's read receipt
	// somewhere after message 1.
	var got int64
	for got < seq {
		f, _ := b.nextOf("update")
		if f.Update.Type != chat.UpdateMessage {
			continue
		}
		got++
		if f.Update.Message.Seq != got {
			t.Fatalf("bob got seq %d where %d was due", f.Update.Message.Seq, got)
		}
	}
}
