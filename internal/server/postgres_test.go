package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/store/pgstore/pgtest"
)

// The database goes away while a node serves traffic: sends fail with 503
// unavailable within a bounded time, /readyz says not ready, nothing
// half-written remains, and traffic recovers by itself once the database
// is back.
func TestPostgresAway(t *testing.T) {
	dbURL, schema := pgtest.Schema(t)
	proxy, viaProxy := pgtest.NewProxy(t, dbURL)
	const admin = "outage-admin"
	srv, err := New(Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), AdminToken: admin,
		Store:  pgtest.WithSearchPath(viaProxy, schema),
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	base := "http://" + srv.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ad := sb.NewAdmin(base, admin, nil)
	if _, err := ad.CreateApp(ctx, "messenger", "Messenger"); err != nil {
		t.Fatal(err)
	}
	var users []*sb.Client
	for _, name := range []string{"alice", "bob"} {
		tok, err := ad.Token(ctx, "messenger", name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, sb.New(base, tok, nil))
	}
	alice := users[0]
	conv, _, err := alice.CreateConversation(ctx, []string{"messenger:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}
	readyz := func() int {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := readyz(); code != 200 {
		t.Fatalf("/readyz with the database up: %d", code)
	}

	// Two senders keep sending, each message with its own client id,
	// until told to stop; every outcome is recorded.
	type outcome struct {
		clientID string
		seq      int64
		err      error
		took     time.Duration
		at       time.Time
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	quit := make(chan struct{})
	for i, c := range users {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-quit:
					return
				default:
				}
				id := fmt.Sprintf("u%d-%d", i, n)
				start := time.Now()
				sent, err := c.Send(ctx, conv.ID, id, "hello "+id, nil)
				o := outcome{clientID: id, err: err, took: time.Since(start), at: start}
				if err == nil {
					o.seq = sent.Message.Seq
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // pacing, not synchronisation
			}
		})
	}
	// waitFor polls until cond holds or the deadline passes.
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	countSince := func(since time.Time, failed bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.at.After(since) && (o.err != nil) == failed {
				n++
			}
		}
		return n
	}
	waitFor("traffic before the outage", 10*time.Second, func() bool { return countSince(time.Time{}, false) >= 20 })

	cutAt := time.Now()
	proxy.Cut()
	waitFor("sends failing with the database away", 30*time.Second, func() bool { return countSince(cutAt, true) >= 4 })
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database away: %d, want 503", code)
	}
	restoredAt := time.Now()
	proxy.Restore()
	waitFor("sends succeeding after the database came back", 30*time.Second, func() bool { return countSince(restoredAt, false) >= 10 })
	waitFor("/readyz after the database came back", 10*time.Second, func() bool { return readyz() == 200 })
	close(quit)
	wg.Wait()

	// Every failure is a 503 unavailable, answered within the store's
	// timeout (5s) and some slack, never a hang or another error.
	var failed []string
	acked := map[string]int64{}
	for _, o := range outcomes {
		if o.err == nil {
			acked[o.clientID] = o.seq
			continue
		}
		var e *sb.Error
		if !errors.As(o.err, &e) || e.Status != http.StatusServiceUnavailable || e.Code != "unavailable" {
			t.Errorf("send %s failed with %v, want 503 unavailable", o.clientID, o.err)
		}
		if o.took > 7*time.Second {
			t.Errorf("send %s took %v to fail", o.clientID, o.took)
		}
		failed = append(failed, o.clientID)
	}
	t.Logf("%d sends acknowledged, %d failed with 503 while the database was away", len(acked), len(failed))
	if len(failed) == 0 {
		t.Fatal("no send failed while the database was away")
	}

	// The client retries what failed, with the same client ids, as the
	// API asks. A failed send may have committed as its connection died;
	// the retry then answers the stored one. Either way each is stored
	// once now.
	for _, id := range failed {
		sent, err := users[int(id[1]-'0')].Send(ctx, conv.ID, id, "hello "+id, nil)
		if err != nil {
			t.Fatalf("retrying %s after the outage: %v", id, err)
		}
		acked[id] = sent.Message.Seq
	}

	// Nothing half-written: the history is seqs 1..n, each client id once
	// at the seq it was acknowledged with, and both streams hold every
	// message once, with cursors 1..m and no gap.
	var hist []sb.Message
	for before := int64(0); ; {
		page, err := alice.History(ctx, conv.ID, before, 200)
		if err != nil {
			t.Fatal(err)
		}
		hist = append(hist, page...)
		if len(page) < 200 {
			break
		}
		before = page[len(page)-1].Seq
	}
	if len(hist) != len(acked) {
		t.Errorf("%d messages stored, %d client ids acknowledged", len(hist), len(acked))
	}
	seqs := make([]int64, 0, len(hist))
	for _, m := range hist {
		if seq, ok := acked[m.ClientID]; !ok || seq != m.Seq {
			t.Errorf("stored %s at seq %d; acknowledged at %d (%v)", m.ClientID, m.Seq, seq, ok)
		}
		seqs = append(seqs, m.Seq)
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("stored seqs are not 1..%d: %v", len(seqs), seqs)
		}
	}
	for _, c := range users {
		var cursor int64
		msgs := map[int64]int{}
		for {
			page, err := c.Sync(ctx, cursor, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page.Updates {
				if u.Cursor != cursor+1 {
					t.Fatalf("stream: cursor %d after %d", u.Cursor, cursor)
				}
				cursor = u.Cursor
				if u.Message != nil {
					msgs[u.Message.Seq]++
				}
			}
			if !page.More {
				break
			}
		}
		if len(msgs) != len(hist) {
			t.Errorf("a stream holds %d messages, the conversation %d", len(msgs), len(hist))
		}
		for seq, n := range msgs {
			if n != 1 {
				t.Errorf("a stream holds seq %d %d times", seq, n)
			}
		}
	}
}
