package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// proc is the switchboard binary running "serve".
type proc struct {
	cmd    *exec.Cmd
	stderr *watcher
	base   string
	exited chan struct{} // closed once the process has exited
	code   int           // its exit code, once exited is closed
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchboard")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binary: %v", err)
	}
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startProc(t *testing.T, bin, dataDir, admin string) *proc {
	t.Helper()
	p := &proc{stderr: newWatcher(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--admin-token", admin)
	p.cmd.Env = append(os.Environ(), "SWITCHBOARD_ADDR=", "SWITCHBOARD_DATA=", "SWITCHBOARD_STORE=", "SWITCHBOARD_BUS=")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.exited)
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	p.base = "http://" + p.stderr.wait(t, p.exited)
	return p
}

type client struct {
	t    *testing.T
	base string
	c    *http.Client
}

// call sends a JSON request; it returns the status, or an error when the
// server did not answer.
func (c *client) call(method, path, token string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return 0, fmt.Errorf("decoding %s: %w", b, err)
		}
	}
	return res.StatusCode, nil
}

func (c *client) must(method, path, token string, body any, want int, out any) {
	c.t.Helper()
	st, err := c.call(method, path, token, body, out)
	if err != nil || st != want {
		c.t.Fatalf("%s %s: status %d, err %v; want %d", method, path, st, err, want)
	}
}

type msg struct {
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	Sender         string `json:"sender"`
	ClientID       string `json:"client_id"`
	Body           string `json:"body"`
}

type sent struct {
	Message msg   `json:"message"`
	Cursor  int64 `json:"cursor"`
}

// TestCrash kills the server with SIGKILL in the middle of concurrent
// sends, restarts it on the same data, and checks that every acknowledged
// message is there with its seq and body, that seqs and stream cursors have
// no gaps, and that retrying the unanswered sends stores no duplicate.
func TestCrash(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	const admin = "crash-test-admin"
	p := startProc(t, bin, dataDir, admin)
	c := &client{t: t, base: p.base, c: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}

	c.must("POST", "/v1/admin/apps", admin, map[string]string{"id": "crash"}, 201, nil)
	// The senders send as fast as the server answers: lift the per-user
	// send rate (10 per second by default).
	c.must("PUT", "/v1/admin/apps/crash/limits", admin, map[string]int{"user_sends_per_second": 100000, "user_burst": 100000}, 200, nil)
	const convs = 8 // each with two senders, one on each side
	type sender struct {
		addr, token, conv, tag string
	}
	var senders []sender
	tokens := map[string]string{}
	convIDs := make([]string, convs)
	for i := range convs {
		for _, u := range []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)} {
			var tok struct{ Token string }
			c.must("POST", "/v1/admin/apps/crash/tokens", admin, map[string]string{"user": u}, 201, &tok)
			tokens["crash:"+u] = tok.Token
		}
		var cv struct{ Conversation struct{ ID string } }
		c.must("POST", "/v1/conversations", tokens[fmt.Sprintf("crash:a%d", i)], map[string]any{"members": []string{fmt.Sprintf("crash:b%d", i)}}, 201, &cv)
		convIDs[i] = cv.Conversation.ID
		for _, u := range []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)} {
			senders = append(senders, sender{"crash:" + u, tokens["crash:"+u], cv.Conversation.ID, u})
		}
	}

	// Send until the server dies. acked holds what the server confirmed;
	// pending the one send of each sender that got no answer.
	var (
		mu      sync.Mutex
		acked   []sent
		pending []struct {
			s              sender
			clientID, body string
		}
		count  atomic.Int64
		enough = make(chan struct{})
		once   sync.Once
		wg     sync.WaitGroup
	)
	const killAfter = 400
	for _, s := range senders {
		wg.Go(func() {
			for n := 0; ; n++ {
				clientID := fmt.Sprintf("%s-%d", s.tag, n)
				body := fmt.Sprintf("message %d from %s", n, s.addr)
				var got sent
				st, err := c.call("POST", "/v1/conversations/"+s.conv+"/messages", s.token, map[string]string{"client_id": clientID, "body": body}, &got)
				if err != nil {
					mu.Lock()
					pending = append(pending, struct {
						s              sender
						clientID, body string
					}{s, clientID, body})
					mu.Unlock()
					return
				}
				if st != 201 {
					t.Errorf("send answered %d", st)
					return
				}
				mu.Lock()
				acked = append(acked, got)
				mu.Unlock()
				if count.Add(1) == killAfter {
					once.Do(func() { close(enough) })
				}
			}
		})
	}
	sendersDone := make(chan struct{})
	go func() { wg.Wait(); close(sendersDone) }()
	select {
	case <-enough:
	case <-sendersDone:
		t.Fatalf("every sender stopped before %d sends were acknowledged; stderr:\n%s", killAfter, p.stderr)
	case <-p.exited:
		t.Fatalf("server exited with %d during the sends; stderr:\n%s", p.code, p.stderr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-sendersDone
	if t.Failed() {
		return
	}
	t.Logf("killed after %d acknowledged sends; %d sends unanswered", len(acked), len(pending))

	p2 := startProc(t, bin, dataDir, admin)
	c.base = p2.base
	c.c.Transport.(*http.Transport).CloseIdleConnections()

	// Every conversation: seqs 1..last_seq, no gap, no duplicate.
	stored := map[string]map[int64]msg{}
	for i, id := range convIDs {
		tok := tokens[fmt.Sprintf("crash:a%d", i)]
		var cv struct {
			Conversation struct {
				LastSeq int64 `json:"last_seq"`
			}
		}
		c.must("GET", "/v1/conversations/"+id, tok, nil, 200, &cv)
		byseq := map[int64]msg{}
		before := int64(0)
		for {
			var page struct{ Messages []msg }
			c.must("GET", fmt.Sprintf("/v1/conversations/%s/messages?limit=200&before=%d", id, before), tok, nil, 200, &page)
			if len(page.Messages) == 0 {
				break
			}
			for _, m := range page.Messages {
				if _, dup := byseq[m.Seq]; dup {
					t.Fatalf("conversation %s: seq %d twice", id, m.Seq)
				}
				byseq[m.Seq] = m
				before = m.Seq
			}
			if before == 1 {
				break
			}
		}
		for seq := int64(1); seq <= cv.Conversation.LastSeq; seq++ {
			if _, ok := byseq[seq]; !ok {
				t.Fatalf("conversation %s: seq %d missing of 1..%d", id, seq, cv.Conversation.LastSeq)
			}
		}
		if int64(len(byseq)) != cv.Conversation.LastSeq {
			t.Fatalf("conversation %s: %d messages, last_seq %d", id, len(byseq), cv.Conversation.LastSeq)
		}
		stored[id] = byseq
	}
	// Every acknowledged message is there, as acknowledged.
	for _, a := range acked {
		m, ok := stored[a.Message.ConversationID][a.Message.Seq]
		if !ok || m != a.Message {
			t.Fatalf("acknowledged %+v, stored %+v", a.Message, m)
		}
	}
	// Every stream: cursors 1..n with no gap.
	for addr, tok := range tokens {
		after, want := int64(0), int64(1)
		for {
			var page struct {
				Updates []struct{ Cursor int64 }
				Cursor  int64
				More    bool
			}
			c.must("GET", fmt.Sprintf("/v1/sync?after=%d&limit=1000", after), tok, nil, 200, &page)
			for _, u := range page.Updates {
				if u.Cursor != want {
					t.Fatalf("%s's stream: cursor %d where %d was due", addr, u.Cursor, want)
				}
				want++
			}
			after = page.Cursor
			if !page.More {
				break
			}
		}
	}
	// Retrying the unanswered sends: each is stored once, whether or not
	// it was committed before the kill.
	for _, pd := range pending {
		var got sent
		st, err := c.call("POST", "/v1/conversations/"+pd.s.conv+"/messages", pd.s.token, map[string]string{"client_id": pd.clientID, "body": pd.body}, &got)
		if err != nil || (st != 200 && st != 201) || got.Message.Body != pd.body {
			t.Fatalf("retry of %s: status %d, err %v, %+v", pd.clientID, st, err, got)
		}
		if _, had := stored[pd.s.conv][got.Message.Seq]; had != (st == 200) {
			t.Fatalf("retry of %s answered %d but seq %d stored before: %v", pd.clientID, st, got.Message.Seq, had)
		}
	}

	// A clean stop on SIGTERM exits 0.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.exited:
		if p2.code != 0 {
			t.Fatalf("exit %d after SIGTERM; stderr:\n%s", p2.code, p2.stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("no exit within a minute of SIGTERM; stderr:\n%s", p2.stderr)
	}
	if !strings.Contains(p2.stderr.String(), "msg=stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p2.stderr)
	}
}
