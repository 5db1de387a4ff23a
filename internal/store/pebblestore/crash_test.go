package pebblestore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

const crashDirEnv = "PEBBLESTORE_CRASH_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashWriter(dir)
		return
	}
	os.Exit(m.Run())
}

// crashWriter is the process that TestKill9KeepsAcknowledged kills: it
// appends until then, printing each acknowledged seq.
func crashWriter(dir string) {
	s, err := Open(dir, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	a, b := user("a"), user("b")
	ctx := context.Background()
	if _, _, _, err := s.CreateConversation(ctx, chat.Conversation{ID: "g1", Kind: chat.Group, Members: []chat.Address{a, b}, Creator: a, CreatedAt: t0}); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex // serialises stdout lines
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := 0; ; j++ {
				res, err := s.AppendMessage(ctx, message("g1", a, fmt.Sprintf("%d-%d", i, j)))
				mu.Lock()
				if err != nil {
					fmt.Println("error", err)
				} else {
					fmt.Println("ack", res.Message.Seq, res.Cursor)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// A process killed with SIGKILL in the middle of appends keeps every
// acknowledged message; on reopen numbering goes on from what is on disk,
// with no gap in messages or streams.
func TestKill9KeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var maxAck int64
	acks := 0
	sc := bufio.NewScanner(out)
	for acks < 300 && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "error" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("writer process: %s", sc.Text())
		}
		if f[0] != "ack" {
			continue
		}
		seq, _ := strconv.ParseInt(f[1], 10, 64)
		maxAck = max(maxAck, seq)
		acks++
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if acks < 300 {
		t.Fatalf("writer process stopped after %d acks", acks)
	}

	s := openTest(t, dir)
	defer s.Close()
	c, err := s.Conversation(t.Context(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	if c.LastSeq < maxAck {
		t.Fatalf("LastSeq %d after the crash, but seq %d was acknowledged", c.LastSeq, maxAck)
	}
	n := int(c.LastSeq)
	var got []chat.Message
	for before := int64(0); ; {
		page, err := s.Messages(t.Context(), "g1", before, 200)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		before = page[len(page)-1].Seq
	}
	if len(got) != n {
		t.Fatalf("%d messages on disk, LastSeq %d", len(got), n)
	}
	for i, m := range got {
		if m.Seq != int64(n-i) {
			t.Fatalf("message %d has seq %d, want %d", i, m.Seq, n-i)
		}
	}
	wantStream(t, s, user("b"), n+1)
	res := mustAppend(t, s, message("g1", user("b"), "after"))
	if res.Message.Seq != int64(n+1) || res.Cursor != int64(n+2) {
		t.Errorf("append after the crash: seq %d cursor %d, want %d and %d", res.Message.Seq, res.Cursor, n+1, n+2)
	}
}
