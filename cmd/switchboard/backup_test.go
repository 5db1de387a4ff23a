package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
)

// acked is a message the server acknowledged.
type acked struct {
	conv string
	seq  int64
	body string
}

// TestBackupUnderLoad takes a backup while senders keep sending, through the
// running server, and checks that the copy opens and holds every message
// acknowledged before the backup began, with no gap in seqs. Then, with the
// server stopped, it backs up the data directory directly.
func TestBackupUnderLoad(t *testing.T) {
	data := t.TempDir()
	base, stop := serveInProcess(t, []string{"--addr", "127.0.0.1:0", "--data", data, "--admin-token", testAdminToken}, noEnv)
	c := cli{t, base, testAdminToken}
	c.must("app", "create", "messenger")
	// The load here is one user's: lift the per-user send rate.
	c.must("app", "limits", "messenger", "--user-sends-per-second", "100000", "--user-burst", "100000")
	alice := sb.New(base, strings.TrimSpace(c.must("token", "messenger", "alice")), nil)
	ctx := context.Background()
	var convs []string
	for _, peer := range []string{"bob", "carol"} {
		conv, _, err := alice.CreateConversation(ctx, []string{"messenger:" + peer}, "")
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, conv.ID)
	}

	var (
		mu   sync.Mutex
		acks []acked
		errs []error
		// progress has a token after each acknowledgement.
		progress = make(chan struct{}, 1)
	)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; loadCtx.Err() == nil; i++ {
				conv := convs[(w+i)%len(convs)]
				body := fmt.Sprintf("w%d-%d", w, i)
				s, err := alice.Send(loadCtx, conv, body, body, nil)
				mu.Lock()
				if err == nil {
					acks = append(acks, acked{conv, s.Message.Seq, body})
					select {
					case progress <- struct{}{}:
					default:
					}
				} else if loadCtx.Err() == nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	waitFor(t, "100 acknowledged sends", progress, func() bool { return count() >= 100 })

	mu.Lock()
	before := append([]acked(nil), acks...)
	mu.Unlock()
	dir := filepath.Join(t.TempDir(), "backup")
	// --data names the running server's directory: the store is locked, so
	// the command asks the server.
	r := c.run("backup", "--data", data, "--to", dir)
	if r.code != exitOK || !strings.Contains(r.stderr, "asking the server") || !strings.Contains(r.stdout, "to restore:") {
		t.Fatalf("backup: %+v", r)
	}
	n := count()
	waitFor(t, "more sends after the backup", progress, func() bool { return count() >= n+50 })
	stopLoad()
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d sends failed during the backup, the first: %v", len(errs), errs[0])
	}
	checkCopy(t, dir, convs, before)

	// A second backup to the same directory is refused.
	if r := c.run("backup", "--to", dir); r.code != exitError || !strings.Contains(r.stderr, "exists already") {
		t.Fatalf("backup to an existing directory: %+v", r)
	}

	// With the server stopped, the store is opened directly; it holds
	// every acknowledged message.
	stop()
	dir2 := filepath.Join(t.TempDir(), "backup2")
	dead := cli{t, "http://127.0.0.1:1", testAdminToken}
	if r := dead.run("backup", "--data", data, "--to", dir2); r.code != exitOK || strings.Contains(r.stderr, "asking the server") {
		t.Fatalf("direct backup: %+v", r)
	}
	checkCopy(t, dir2, convs, acks)

	// A directory without a store: an error, and nothing made.
	empty := t.TempDir()
	dir3 := filepath.Join(t.TempDir(), "backup3")
	if r := dead.run("backup", "--data", empty, "--to", dir3); r.code != exitError || !strings.Contains(r.stderr, "no Pebble store") {
		t.Fatalf("backup of an empty directory: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(empty, "pebble")); !os.IsNotExist(err) {
		t.Fatalf("the failed backup made a store: %v", err)
	}
}

// checkCopy opens the store copied to dir and checks that it holds every
// message of want, and that each conversation's seqs run 1..last.
func checkCopy(t *testing.T, dir string, convs []string, want []acked) {
	t.Helper()
	st, err := pebblestore.Open(dir, nil)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer st.Close()
	got := map[[2]string]string{} // (conv, seq) -> body
	for _, conv := range convs {
		var before, next int64 = 0, 0
		for {
			page, err := st.Messages(context.Background(), conv, before, 200)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, m := range page {
				if next != 0 && m.Seq != next-1 {
					t.Fatalf("%s: seq %d follows %d in the backup", conv, m.Seq, next)
				}
				next = m.Seq
				got[[2]string{conv, fmt.Sprint(m.Seq)}] = m.Body
			}
			before = page[len(page)-1].Seq
		}
		if next > 1 {
			t.Fatalf("%s: the backup's seqs start at %d", conv, next)
		}
	}
	for _, a := range want {
		if b, ok := got[[2]string{a.conv, fmt.Sprint(a.seq)}]; !ok || b != a.body {
			t.Fatalf("acknowledged message %s #%d %q missing from the backup (found %q, %v); it holds %d messages, want at least %d",
				a.conv, a.seq, a.body, b, ok, len(got), len(want))
		}
	}
}

// waitFor checks cond each time progress has a token, until it holds, for
// at most a minute.
func waitFor(t *testing.T, what string, progress <-chan struct{}, cond func() bool) {
	t.Helper()
	timeout := time.After(time.Minute)
	for !cond() {
		select {
		case <-progress:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
