package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/bus/natsbus/natstest"
	"github.com/switchboard-chat/switchboard/internal/store/pgstore/pgtest"
)

// clusterNode is one "switchboard serve" process of a cluster.
type clusterNode struct {
	cmd    *exec.Cmd
	stderr *watcher
	url    string
	exited chan struct{}
}

// startCluster starts n server processes on one fresh PostgreSQL schema
// and one NATS subject prefix, all with the given admin token.
func startCluster(t *testing.T, n int, admin string) []*clusterNode {
	t.Helper()
	dbURL, schema := pgtest.Schema(t)
	natsURL := natstest.URL(t) + "?prefix=" + natstest.Prefix()
	bin := buildBinary(t)
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		nd := &clusterNode{stderr: newWatcher(), exited: make(chan struct{})}
		nd.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(t.TempDir(), fmt.Sprint("node", i)),
			"--admin-token", admin, "--store", pgtest.WithSearchPath(dbURL, schema), "--bus", natsURL)
		nd.cmd.Env = append(os.Environ(), "SWITCHBOARD_ADDR=", "SWITCHBOARD_DATA=", "SWITCHBOARD_STORE=", "SWITCHBOARD_BUS=", "SWITCHBOARD_DEV=")
		nd.cmd.Stderr = nd.stderr
		if err := nd.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			defer close(nd.exited)
			nd.cmd.Wait()
		}()
		t.Cleanup(func() {
			nd.cmd.Process.Kill()
			<-nd.exited
			if t.Failed() {
				t.Logf("node %d stderr:\n%s", i, nd.stderr)
			}
		})
		nodes[i] = nd
	}
	// The nodes start together: the migrations take turns.
	for _, nd := range nodes {
		nd.url = "http://" + nd.stderr.wait(t, nd.exited)
	}
	return nodes
}

// others returns the URLs of every node but i, starting after it.
func others(nodes []*clusterNode, i int) []string {
	var list []string
	for k := 1; k < len(nodes); k++ {
		list = append(list, nodes[(i+k)%len(nodes)].url)
	}
	return list
}

// streamLog is what one user's stream delivered.
type streamLog struct {
	mu      sync.Mutex
	cursors []int64
	msgs    map[string]int // client id -> times delivered
	n       int            // messages delivered
	changed chan struct{}
}

func (l *streamLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Three nodes on one PostgreSQL and NATS. Users on different nodes
// converse live; one node is SIGKILLed in the middle; its users' streams
// move to the other nodes and resume: every stream delivers cursors
// 1..n with no gap and no repeat, every acknowledged message arrives
// once at both ends, and the database holds each exactly once.
func TestClusterSurvivesNodeKill(t *testing.T) {
	const (
		admin   = "cluster-admin-token"
		pairs   = 3
		perUser = 40 // messages each user sends
	)
	nodes := startCluster(t, 3, admin)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ad := sb.NewAdmin(nodes[0].url, admin, nil)
	for _, app := range []string{"messenger", "instagram"} {
		if _, err := ad.CreateApp(ctx, app, app); err != nil {
			t.Fatal(err)
		}
	}
	// Through the node that made the apps: another node's cache could
	// hold them without interop for up to the service's cache TTL. The
	// other nodes read them from the shared store.
	if _, err := ad.SetInterop(ctx, "messenger", []string{"instagram"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ad.SetInterop(ctx, "instagram", []string{"messenger"}); err != nil {
		t.Fatal(err)
	}

	type user struct {
		addr   string
		tok    string
		node   int
		c      *sb.Client
		s      *sb.Stream
		log    *streamLog
		conv   string
		sent   []*sb.Outgoing
		sentMu sync.Mutex
	}
	var users []*user
	for p := range pairs {
		// alice on node p, bob on node p+1: every pair spans two nodes,
		// and node 1 has users of two pairs.
		for k, app := range []string{"messenger", "instagram"} {
			name := fmt.Sprintf("%s%d", []string{"alice", "bob"}[k], p)
			tok, err := ad.Token(ctx, app, name, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			node := (p + k) % len(nodes)
			c := sb.New(nodes[node].url, tok, &sb.Options{
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
				FallbackURLs: others(nodes, node),
			})
			users = append(users, &user{addr: app + ":" + name, tok: tok, node: node, c: c, log: &streamLog{msgs: map[string]int{}, changed: make(chan struct{}, 1)}})
		}
	}
	for p := range pairs {
		a, b := users[2*p], users[2*p+1]
		conv, _, err := a.c.CreateConversation(ctx, []string{b.addr}, "")
		if err != nil {
			t.Fatal(err)
		}
		a.conv, b.conv = conv.ID, conv.ID
	}

	var readers sync.WaitGroup
	for _, u := range users {
		s, err := u.c.Connect(ctx, 0)
		if err != nil {
			t.Fatalf("%s: Connect: %v", u.addr, err)
		}
		u.s = s
		readers.Go(func() {
			for ev := range s.Events() {
				if ev.Update == nil {
					continue
				}
				l := u.log
				l.mu.Lock()
				l.cursors = append(l.cursors, ev.Update.Cursor)
				if m := ev.Update.Message; m != nil {
					l.msgs[m.ClientID]++
					l.n++
				}
				l.mu.Unlock()
				select {
				case l.changed <- struct{}{}:
				default:
				}
			}
		})
	}
	defer func() {
		for _, u := range users {
			u.s.Close()
		}
		readers.Wait()
	}()

	// Everyone sends, paced so that traffic is flowing when the node dies.
	var senders sync.WaitGroup
	killAt := make(chan struct{})
	var killOnce sync.Once
	for _, u := range users {
		senders.Go(func() {
			for i := range perUser {
				if i == perUser/3 {
					killOnce.Do(func() { close(killAt) })
				}
				o, err := u.s.Send(ctx, u.conv, fmt.Sprintf("%s #%d", u.addr, i), nil)
				if err != nil {
					t.Errorf("%s: Send: %v", u.addr, err)
					return
				}
				u.sentMu.Lock()
				u.sent = append(u.sent, o)
				u.sentMu.Unlock()
				time.Sleep(10 * time.Millisecond) // pacing, not synchronisation
			}
		})
	}
	<-killAt
	victim := nodes[1]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	senders.Wait()

	// Every send is acknowledged: the outboxes carried the ones in flight
	// on the dead node over to the others.
	acked := map[string]sb.Sent{} // client id -> answer
	for _, u := range users {
		for _, o := range u.sent {
			sent, err := o.Wait(ctx)
			if err != nil {
				t.Fatalf("%s: message %s never acknowledged: %v", u.addr, o.ClientID, err)
			}
			acked[o.ClientID] = *sent
		}
	}
	if len(acked) != len(users)*perUser {
		t.Fatalf("%d acknowledged messages, want %d", len(acked), len(users)*perUser)
	}

	// Both ends of every pair receive every message of their conversation
	// once: 2*perUser messages each.
	want := 2 * perUser
	deadline := time.After(time.Minute)
	for _, u := range users {
		for u.log.count() < want {
			select {
			case <-u.log.changed:
			case <-deadline:
				t.Fatalf("%s received %d messages, want %d", u.addr, u.log.count(), want)
			}
		}
	}
	moved := 0
	for _, u := range users {
		if u.node == 1 {
			moved++
		}
		l := u.log
		l.mu.Lock()
		for i, c := range l.cursors {
			if c != int64(i+1) {
				t.Errorf("%s: stream delivered cursor %d at position %d: a gap or a repeat (cursors %v)", u.addr, c, i, l.cursors)
				break
			}
		}
		for id, n := range l.msgs {
			if n != 1 {
				t.Errorf("%s: message %s delivered %d times", u.addr, id, n)
			}
			if _, ok := acked[id]; !ok {
				t.Errorf("%s: received %s, which no one sent", u.addr, id)
			}
		}
		if l.n != want {
			t.Errorf("%s: %d messages delivered, want %d", u.addr, l.n, want)
		}
		l.mu.Unlock()
	}
	if moved == 0 {
		t.Fatal("no user was on the killed node")
	}

	// The database holds each acknowledged message exactly once: seqs
	// 1..2*perUser in each conversation, each client id once, matching its
	// acknowledgment.
	for p := range pairs {
		a := users[2*p]
		// Through node 0: a's own node may be the dead one.
		hist, err := sb.New(nodes[0].url, a.tok, nil).History(ctx, a.conv, 0, 200)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if len(hist) != want {
			t.Errorf("%s holds %d messages, want %d", a.conv, len(hist), want)
		}
		seen := map[string]bool{}
		seqs := make([]int64, 0, len(hist))
		for _, m := range hist {
			if seen[m.ClientID] {
				t.Errorf("%s: client id %s stored twice", a.conv, m.ClientID)
			}
			seen[m.ClientID] = true
			seqs = append(seqs, m.Seq)
			if ack, ok := acked[m.ClientID]; !ok || ack.Message.Seq != m.Seq {
				t.Errorf("%s: stored %s at seq %d, acknowledged as %+v", a.conv, m.ClientID, m.Seq, ack.Message)
			}
		}
		slices.Sort(seqs)
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Errorf("%s: seqs %v are not 1..%d", a.conv, seqs, len(seqs))
				break
			}
		}
	}
	var e *sb.Error
	if _, _, err := sb.New(victim.url, "x", nil).Conversations(ctx, "", 1); !errors.As(err, &e) || e.Code != "unavailable" {
		t.Errorf("the killed node still answers: %v", err)
	}
}
