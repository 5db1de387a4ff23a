package status_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/outage/status"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// node is the real server in-process on 127.0.0.1:0 over Pebble in a
// temporary directory.
type node struct {
	t     *testing.T
	srv   *server.Server
	base  string
	admin string
	stop  func() // ends Run and waits for it; idempotent
}

func startNode(t *testing.T) *node {
	t.Helper()
	return startNodeWith(t, server.Config{})
}

func startNodeWith(t *testing.T, cfg server.Config) *node {
	t.Helper()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	addr := srv.Addr()
	if addr == "" {
		cancel()
		t.Fatalf("server.Run: %v", <-done)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			// A test that failed the message store closed it already.
			if err := <-done; err != nil && !errors.Is(err, store.ErrClosed) {
				t.Errorf("server.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &node{t: t, srv: srv, base: "http://" + addr, admin: srv.AdminToken(), stop: stop}
}

// clients from distinct loopback addresses: Linux routes all of
// 127.0.0.0/8 to the loopback interface, so each is a different reporter.
var (
	clientsMu sync.Mutex
	clients   = map[string]*http.Client{}
)

func clientFrom(ip string) *http.Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[ip]; ok {
		return c
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}, Timeout: 20 * time.Second}
	clients[ip] = c
	return c
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (n *node) call(from, method, path, token string, body any) answer {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.base+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := clientFrom(from).Do(req)
	if err != nil {
		n.t.Fatalf("%s %s from %s: %v", method, path, from, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return answer{res.StatusCode, res.Header, b}
}

func (a answer) want(t *testing.T, status int, v any) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; body %s", a.status, status, a.body)
	}
	if v != nil {
		if err := json.Unmarshal(a.body, v); err != nil {
			t.Fatalf("decoding %s: %v", a.body, err)
		}
	}
}

func (a answer) wantErr(t *testing.T, status int, code string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	a.want(t, status, &e)
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %s, want code %s with a message", a.body, code)
	}
}

func (n *node) createApps(ids ...string) {
	n.t.Helper()
	for _, id := range ids {
		n.call("127.0.0.1", "POST", "/v1/admin/apps", n.admin, map[string]string{"id": id, "name": strings.ToUpper(id[:1]) + id[1:]}).want(n.t, 201, nil)
	}
}

func (n *node) token(app, user string) string {
	n.t.Helper()
	var tok struct{ Token string }
	n.call("127.0.0.1", "POST", "/v1/admin/apps/"+app+"/tokens", n.admin, map[string]any{"user": user}).want(n.t, 201, &tok)
	return tok.Token
}

func (n *node) status() status.Snapshot {
	n.t.Helper()
	var s status.Snapshot
	n.call("127.0.0.1", "GET", "/v1/status", "", nil).want(n.t, 200, &s)
	return s
}

func stateOf(s status.Snapshot, app string) string {
	for _, a := range s.Apps {
		if a.App == app {
			return a.State
		}
	}
	return "(missing)"
}

// sseStream reads the "status" events of /status/events.
type sseStream struct {
	events chan status.Snapshot
	cancel func()
}

func (n *node) subscribe() *sseStream {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", n.base+"/status/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		n.t.Fatalf("GET /status/events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sseStream{events: make(chan status.Snapshot, 256), cancel: cancel}
	go func() {
		defer res.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "status":
				var snap status.Snapshot
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &snap) == nil {
					select {
					case s.events <- snap:
					default:
					}
				}
			case line == "":
				event = ""
			}
		}
	}()
	n.t.Cleanup(cancel)
	return s
}

// waitEvent waits for an event that satisfies ok.
func (s *sseStream) waitEvent(t *testing.T, what string, ok func(status.Snapshot) bool) status.Snapshot {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case snap, open := <-s.events:
			if !open {
				t.Fatalf("the event stream ended before %s", what)
			}
			if ok(snap) {
				return snap
			}
		case <-timeout:
			t.Fatalf("no event with %s", what)
		}
	}
}

func TestReportsThroughServer(t *testing.T) {
	n := startNode(t)
	n.createApps("messenger", "instagram")
	alice := n.token("messenger", "alice")
	bob := n.token("instagram", "bob")
	ip := "127.0.0.2"

	// Bad input, in the API's error shape. Each costs the address a token.
	n.call(ip, "POST", "/v1/reports", "", map[string]string{"app": "messenger", "problem": "everything"}).wantErr(t, 400, "invalid_argument")
	n.call(ip, "POST", "/v1/reports", "", map[string]string{"app": "nope", "problem": "login"}).wantErr(t, 404, "not_found")
	n.call(ip, "POST", "/v1/reports", "", map[string]string{"app": "messenger", "problem": "login", "note": strings.Repeat("x", 501)}).wantErr(t, 400, "invalid_argument")
	n.call(ip, "POST", "/v1/reports", "", map[string]any{"app": "messenger", "problem": "login", "extra": 1}).wantErr(t, 400, "invalid_argument")
	// A token of another app, and a bad token.
	n.call("127.0.0.3", "POST", "/v1/reports", bob, map[string]string{"app": "messenger", "problem": "sending"}).wantErr(t, 403, "permission_denied")
	n.call("127.0.0.3", "POST", "/v1/reports", "not-a-jwt", map[string]string{"app": "messenger", "problem": "sending"}).wantErr(t, 401, "unauthenticated")

	// The fifth request from ip counts; the sixth is over the limit and
	// counts nothing.
	var ans struct{ Counted bool }
	n.call(ip, "POST", "/v1/reports", "", map[string]string{"app": "messenger", "problem": "login", "note": strings.Repeat("é", 250)}).want(t, 202, &ans)
	if !ans.Counted {
		t.Error("a first report from an address was not counted")
	}
	a := n.call(ip, "POST", "/v1/reports", "", map[string]string{"app": "instagram", "problem": "login"})
	a.wantErr(t, 429, "rate_limited")
	if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without a Retry-After: %q", ra)
	}
	// With a token the reporter is the user: alice counts once in 15
	// minutes, whatever address she reports from.
	n.call("127.0.0.4", "POST", "/v1/reports", alice, map[string]string{"app": "messenger", "problem": "sending"}).want(t, 202, &ans)
	if !ans.Counted {
		t.Error("alice's first report was not counted")
	}
	n.call("127.0.0.5", "POST", "/v1/reports", alice, map[string]string{"app": "messenger", "problem": "receiving"}).want(t, 202, &ans)
	if ans.Counted {
		t.Error("alice's second report within 15 minutes was counted")
	}
	st := n.status()
	for _, app := range st.Apps {
		want := map[string]int{"messenger": 2, "instagram": 0}[app.App]
		if app.Reports15m != want {
			t.Errorf("%s: reports_15m = %d, want %d", app.App, app.Reports15m, want)
		}
	}
	if len(st.Apps) != 2 || st.MessageStore != "available" {
		t.Errorf("status = %+v", st)
	}
	// Operators see the notes.
	var notes struct{ Apps []status.AppNotes }
	n.call("127.0.0.1", "GET", "/v1/admin/reports", n.admin, nil).want(t, 200, &notes)
	if len(notes.Apps) != 2 || len(notes.Apps[1].Notes) != 1 || notes.Apps[1].Notes[0].Note != strings.Repeat("é", 250) {
		t.Errorf("notes = %+v", notes)
	}
	n.call("127.0.0.1", "GET", "/v1/admin/reports", "", nil).wantErr(t, 401, "unauthenticated")
}

// A burst of reports from 60 addresses turns one app to outage and opens
// an incident; the other apps stay operational; the event stream says so;
// the page, the feed and the admin calls show it; and with the message
// store failed the status side still answers and says so.
func TestBurstOpensIncident(t *testing.T) {
	n := startNode(t)
	n.createApps("messenger", "instagram", "workplace")
	if st := n.status(); len(st.Apps) != 3 || st.Incidents == nil {
		t.Fatalf("status = %+v, want the three apps and an empty incident list", st)
	}
	events := n.subscribe()
	events.waitEvent(t, "the first snapshot", func(s status.Snapshot) bool { return len(s.Apps) == 3 })

	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			ip := fmt.Sprintf("127.0.1.%d", 10+i)
			problem := status.Problems[i%len(status.Problems)]
			a := n.call(ip, "POST", "/v1/reports", "", map[string]string{"app": "messenger", "problem": problem})
			if a.status != 202 {
				t.Errorf("report from %s: %d %s", ip, a.status, a.body)
			}
		})
	}
	wg.Wait()
	snap := events.waitEvent(t, "messenger in outage", func(s status.Snapshot) bool { return stateOf(s, "messenger") == "outage" })
	for _, app := range []string{"instagram", "workplace"} {
		if got := stateOf(snap, app); got != "operational" {
			t.Errorf("%s is %s while messenger is out", app, got)
		}
	}
	st := n.status()
	if stateOf(st, "messenger") != "outage" || st.Apps[1].App != "messenger" || st.Apps[1].Reports15m != 60 {
		t.Fatalf("status = %+v, want messenger in outage with 60 reports", st.Apps)
	}
	if len(st.Incidents) != 1 || st.Incidents[0].App != "messenger" || st.Incidents[0].Status != "open" || st.Incidents[0].Impact != "outage" {
		t.Fatalf("incidents = %+v, want messenger's outage open", st.Incidents)
	}
	id := st.Incidents[0].ID
	if u := st.Incidents[0].Updates; len(u) != 1 || !strings.Contains(u[0].Message, "people reported problems within 15 minutes") {
		t.Errorf("timeline = %+v", u)
	}

	// Operators post an update and resolve; everyone sees it.
	var body struct{ Incident status.Incident }
	n.call("127.0.0.1", "POST", "/v1/admin/incidents/"+id+"/updates", "", map[string]string{"message": "x"}).wantErr(t, 401, "unauthenticated")
	n.call("127.0.0.1", "POST", "/v1/admin/incidents/"+id+"/updates", n.admin, map[string]string{"message": "Sends fail in one region; we are failing over."}).want(t, 201, &body)
	if len(body.Incident.Updates) != 2 || body.Incident.Updates[1].By != "operator" {
		t.Errorf("after an update: %+v", body.Incident)
	}
	n.call("127.0.0.1", "POST", "/v1/admin/incidents/nope/resolve", n.admin, nil).wantErr(t, 404, "not_found")
	var list struct{ Incidents []status.Incident }
	n.call("127.0.0.1", "GET", "/v1/admin/incidents", n.admin, nil).want(t, 200, &list)
	if len(list.Incidents) != 1 || list.Incidents[0].ID != id {
		t.Errorf("admin incidents = %+v", list.Incidents)
	}

	page := n.call("127.0.0.1", "GET", "/status", "", nil)
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /status: %d %s", page.status, page.header.Get("Content-Type"))
	}
	for _, want := range []string{`data-app="messenger" data-state="outage"`, `data-app="instagram" data-state="operational"`,
		"<svg", `class="reports" data-testid="reports-line" d="M`, "Sends fail in one region", "Messenger: outage"} {
		if !bytes.Contains(page.body, []byte(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}

	n.call("127.0.0.1", "POST", "/v1/admin/incidents/"+id+"/resolve", n.admin, map[string]string{"message": "Failed over; sends work again."}).want(t, 200, &body)
	if body.Incident.Status != "resolved" || body.Incident.ResolvedAt == nil {
		t.Errorf("after resolve: %+v", body.Incident)
	}
	n.call("127.0.0.1", "POST", "/v1/admin/incidents/"+id+"/resolve", n.admin, nil).wantErr(t, 409, "conflict")
	events.waitEvent(t, "the incident resolved", func(s status.Snapshot) bool {
		return len(s.Incidents) == 1 && s.Incidents[0].Status == "resolved"
	})

	// The Atom feed: well-formed, Atom's namespace, the incident as an
	// entry with a urn:uuid id.
	feed := n.call("127.0.0.1", "GET", "/status/feed.atom", "", nil)
	var f struct {
		XMLName xml.Name
		ID      string `xml:"id"`
		Updated string `xml:"updated"`
		Entries []struct {
			ID      string `xml:"id"`
			Title   string `xml:"title"`
			Updated string `xml:"updated"`
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal(feed.body, &f); err != nil || feed.status != 200 {
		t.Fatalf("feed: %d %v\n%s", feed.status, err, feed.body)
	}
	if f.XMLName.Space != "http://www.w3.org/2005/Atom" || f.XMLName.Local != "feed" || f.ID == "" || f.Updated == "" ||
		len(f.Entries) != 1 || f.Entries[0].ID != "urn:uuid:"+id || !strings.HasPrefix(f.Entries[0].Title, "[Resolved] ") ||
		!strings.Contains(f.Entries[0].Content, "Failed over") {
		t.Errorf("feed = %+v", f)
	}
	if ct := feed.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/atom+xml") {
		t.Errorf("feed Content-Type %q", ct)
	}

	// The message store fails. The status side answers from its own
	// storage, says so, and still takes reports.
	if err := n.srv.Service().Store().Close(); err != nil {
		t.Fatal(err)
	}
	st = n.status()
	if st.MessageStore != "unavailable" || len(st.Apps) != 3 || stateOf(st, "messenger") != "outage" {
		t.Errorf("with the store down: %+v", st)
	}
	events.waitEvent(t, "the store unavailable", func(s status.Snapshot) bool { return s.MessageStore == "unavailable" })
	page = n.call("127.0.0.1", "GET", "/status", "", nil)
	if page.status != 200 || !bytes.Contains(page.body, []byte("The message store is unavailable")) || !bytes.Contains(page.body, []byte("<svg")) {
		t.Errorf("GET /status with the store down: %d\n%s", page.status, page.body)
	}
	n.call("127.0.0.9", "POST", "/v1/reports", "", map[string]string{"app": "instagram", "problem": "login"}).want(t, 202, nil)
	// A token cannot be checked now: the report counts by address.
	tokenless := n.call("127.0.0.10", "POST", "/v1/reports", "eyJhbGciOiJIUzI1NiJ9.e30.x", map[string]string{"app": "instagram", "problem": "login"})
	if tokenless.status != 202 && tokenless.status != 401 {
		t.Errorf("a report with a token while the store is down: %d %s", tokenless.status, tokenless.body)
	}
	if r := n.call("127.0.0.1", "GET", "/readyz", "", nil); r.status != 503 {
		t.Errorf("readyz with the store down: %d", r.status)
	}
}

// Shutdown ends the event streams rather than waiting for them: with a
// shutdown deadline of an hour, Run returns only because the open stream
// was closed by the server.
func TestShutdownEndsEventStreams(t *testing.T) {
	n := startNodeWith(t, server.Config{ShutdownTimeout: time.Hour})
	events := n.subscribe()
	events.waitEvent(t, "the first snapshot", func(status.Snapshot) bool { return true })
	n.stop()
	for range events.events {
	}
}
