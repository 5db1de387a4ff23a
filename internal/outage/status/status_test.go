package status

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/outage/detector"
)

// fakeBackend is the messaging layer as the status side sees it, with a
// switch that takes the message store down.
type fakeBackend struct {
	mu   sync.Mutex
	apps []chat.App
	down bool
}

var errDown = errors.New("store unavailable")

func (b *fakeBackend) Apps(ctx context.Context) ([]chat.App, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return nil, errDown
	}
	return append([]chat.App(nil), b.apps...), nil
}

// Authenticate takes tokens "app:user".
func (b *fakeBackend) Authenticate(ctx context.Context, token string) (chat.Address, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return "", &chat.Error{Code: chat.Unavailable, Message: "down"}
	}
	a, err := chat.ParseAddress(token)
	if err != nil {
		return "", chat.Errorf(chat.Unauthenticated, "bad token")
	}
	return a, nil
}

func (b *fakeBackend) Ping(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return errDown
	}
	return nil
}

func (b *fakeBackend) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var t0 = time.Date(2026, 3, 4, 14, 30, 0, 0, time.UTC)

func TestReportCounting(t *testing.T) {
	var a appReports
	if !a.add(t0, "user:m:alice", 0) {
		t.Fatal("a first report did not count")
	}
	if a.add(t0.Add(time.Minute), "user:m:alice", 1) {
		t.Error("the same reporter counted twice within 15 minutes")
	}
	if !a.add(t0.Add(2*time.Minute), "user:m:bob", 1) {
		t.Error("a second reporter did not count")
	}
	if n := a.count(t0.Add(2 * time.Minute)); n != 2 {
		t.Errorf("count = %d, want 2 distinct reporters", n)
	}
	if a.byProblem[0] != 1 || a.byProblem[1] != 1 {
		t.Errorf("by problem = %v, want one sending and one receiving", a.byProblem)
	}
	// At 15 minutes alice's report leaves the window; she may count again.
	at := t0.Add(ReportWindow)
	if n := a.count(at); n != 1 {
		t.Errorf("count at +15m = %d, want 1 (bob only)", n)
	}
	if !a.add(at, "user:m:alice", 2) {
		t.Error("alice's report 15 minutes after her first did not count")
	}
	if n := a.count(at.Add(ReportWindow)); n != 0 {
		t.Errorf("count 15 minutes after the last report = %d, want 0", n)
	}
	if a.byProblem != [5]int{} {
		t.Errorf("by problem after every report expired = %v, want zeros", a.byProblem)
	}
	// Many reporters, expiring in order, leave nothing behind.
	for i := range 1000 {
		a.add(at.Add(time.Duration(i)*time.Second), "addr:"+string(rune('a'+i%26))+strings.Repeat("x", i/26), 4)
	}
	if n := a.count(at.Add(1000 * time.Second)); n != 899 {
		t.Errorf("count = %d, want 899 (reports made at or before the cut have expired)", n)
	}
	if n := a.count(at.Add(time.Hour)); n != 0 || len(a.last) != 0 {
		t.Errorf("after an hour: count %d, %d reporters remembered; want none", n, len(a.last))
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(5, time.Minute)
	ip := netip.MustParseAddr("192.0.2.7")
	other := netip.MustParseAddr("192.0.2.8")
	for i := range 5 {
		if ok, _ := l.allow(t0, ip); !ok {
			t.Fatalf("report %d of the burst refused", i+1)
		}
	}
	ok, after := l.allow(t0, ip)
	if ok || after != time.Minute {
		t.Fatalf("6th report: allowed %v, retry after %v; want refused, a minute", ok, after)
	}
	if ok, _ := l.allow(t0, other); !ok {
		t.Error("another address was limited by the first one's reports")
	}
	if ok, after := l.allow(t0.Add(30*time.Second), ip); ok || after != 30*time.Second {
		t.Errorf("after 30s: allowed %v, retry after %v; want refused, 30s", ok, after)
	}
	if ok, _ := l.allow(t0.Add(time.Minute), ip); !ok {
		t.Error("a token did not come back after a minute")
	}
	if ok, _ := l.allow(t0.Add(time.Minute), ip); ok {
		t.Error("two tokens came back after a minute")
	}
	l.prune(t0.Add(2 * time.Minute))
	if _, ok := l.b[ip]; !ok {
		t.Error("prune dropped a bucket that was not full")
	}
	if _, ok := l.b[other]; ok {
		t.Error("prune kept a bucket that was full again")
	}
	l.prune(t0.Add(time.Hour))
	if len(l.b) != 0 {
		t.Errorf("%d buckets left after an hour", len(l.b))
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":             "192.0.2.1",
		"::ffff:192.0.2.1":      "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::",
		"2001:db8:1:2:ffff::99": "2001:db8:1:2::",
	} {
		if got := clientKey(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("clientKey(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSignalsSample(t *testing.T) {
	s := NewSignals()
	for i := range 100 {
		s.ObserveSend("m", time.Duration(i+1)*time.Millisecond, nil)
	}
	s.ObserveSend("m", 5*time.Second, &chat.Error{Code: chat.Unavailable})
	s.ObserveSend("m", time.Millisecond, &chat.Error{Code: chat.InvalidArgument}) // the client's fault: not counted
	got := s.take("m")
	if got.sent != 100 || got.failed != 1 {
		t.Errorf("sent %v failed %v, want 100 and 1", got.sent, got.failed)
	}
	// The 95th of 101 latencies (1..100 ms and 5 s) is 95 ms; the histogram
	// knows it within a quarter of a doubling.
	if got.p95 < 95 || got.p95 > 95*1.19 {
		t.Errorf("p95 = %v ms, want 95 to 113", got.p95)
	}
	again := s.take("m")
	if again.sent != 0 || again.failed != 0 || !math.IsNaN(again.p95) {
		t.Errorf("a second sample = %+v, want nothing", again)
	}
	if none := s.take("other"); none.sent != 0 || !math.IsNaN(none.p95) {
		t.Errorf("an app that never sent = %+v", none)
	}
}

// newTestService opens a Service over a fake backend with apps m and i, on
// a fake clock, sampling only when the test calls tick.
func newTestService(t *testing.T, dir string, b *fakeBackend, clk *fakeClock) *Service {
	t.Helper()
	s, err := Open(Config{Dir: dir, Backend: b, Now: clk.Now, Interval: time.Hour, AdminToken: "admin",
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appStatus(t *testing.T, s *Service, app string) AppStatus {
	t.Helper()
	for _, a := range s.Snapshot(context.Background()).Apps {
		if a.App == app {
			return a
		}
	}
	t.Fatalf("app %s is not in the snapshot", app)
	return AppStatus{}
}

// waitState waits for the loop goroutine to move app to want.
func waitState(t *testing.T, s *Service, app string, want detector.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		got := s.apps[app].state
		s.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("app %s is %s, want %s", app, got, want)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not timing it
	}
}

func messages(in Incident) []string {
	var out []string
	for _, u := range in.Updates {
		out = append(out, u.At.Format("15:04")+" "+u.By+" "+u.State+": "+u.Message)
	}
	return out
}

func TestIncidentTimeline(t *testing.T) {
	clk := &fakeClock{t: t0}
	b := &fakeBackend{apps: []chat.App{{ID: "m", Name: "Messenger"}, {ID: "i", Name: "Instagram"}}}
	dir := t.TempDir()
	s := newTestService(t, dir, b, clk)
	clk.Add(time.Minute)
	s.tick()

	// 60 people report within a minute: the 50th turns the app to outage at
	// once (through the loop), without waiting for the next sample.
	start := clk.Add(30 * time.Second)
	for i := range 60 {
		s.report(start, "m", "user:m:u"+string(rune('A'+i)), "sending", "")
	}
	waitState(t, s, "m", detector.Outage)
	if st := appStatus(t, s, "i"); st.State != "operational" {
		t.Errorf("the other app is %s", st.State)
	}
	if st := appStatus(t, s, "m"); st.Reports15m != 60 || st.Problems["sending"] != 60 {
		t.Errorf("m: %+v, want 60 reports of sending", st)
	}
	inc := s.Incidents()
	if len(inc) != 1 || inc[0].App != "m" || inc[0].Status != StatusOpen || inc[0].Impact != "outage" || inc[0].Title != "Messenger: outage" {
		t.Fatalf("incidents = %+v, want one open outage of m", inc)
	}
	if u := inc[0].Updates; len(u) != 1 || !strings.Contains(u[0].Message, "people reported problems within 15 minutes") || !u[0].At.Equal(start) {
		t.Fatalf("timeline = %q", messages(inc[0]))
	}

	// An operator posts an update.
	if _, err := s.AddUpdate(inc[0].ID, "We are looking into failed sends."); err != nil {
		t.Fatal(err)
	}
	// The reports expire: recovering, then operational after 15 quiet
	// minutes, and the incident resolves itself.
	for range 16 {
		clk.Add(time.Minute)
		s.tick()
	}
	waitState(t, s, "m", detector.Recovering)
	for range 15 {
		clk.Add(time.Minute)
		s.tick()
	}
	waitState(t, s, "m", detector.Operational)
	in := s.Incidents()[0]
	want := []string{
		"14:31 monitor outage: ",
		"14:31 operator : We are looking into failed sends.",
		"14:46 monitor recovering: reports back to normal",
		"15:01 monitor operational: all signals normal for 15m0s",
	}
	got := messages(in)
	if len(got) != len(want) {
		t.Fatalf("timeline = %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("timeline[%d] = %q, want %q...", i, got[i], want[i])
		}
	}
	if in.Status != StatusResolved || in.ResolvedAt == nil || !in.ResolvedAt.Equal(in.Updates[3].At) {
		t.Errorf("incident %s resolved at %v, want resolved by the monitor", in.Status, in.ResolvedAt)
	}
	if _, err := s.Resolve(in.ID, ""); chat.ErrorCode(err) != chat.Conflict {
		t.Errorf("resolving twice: %v, want conflict", err)
	}
	if _, err := s.AddUpdate("nope", "x"); chat.ErrorCode(err) != chat.NotFound {
		t.Errorf("update of an unknown incident: %v, want not_found", err)
	}
	if _, err := s.AddUpdate(in.ID, "  "); chat.ErrorCode(err) != chat.InvalidArgument {
		t.Errorf("an empty update: %v, want invalid_argument", err)
	}

	// An operator's incident stays open until an operator resolves it.
	op, err := s.OpenIncident("i", "", "degraded", "Planned maintenance of the media servers.")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenIncident("zz", "", "", "x"); chat.ErrorCode(err) != chat.NotFound {
		t.Errorf("incident for an unknown app: %v, want not_found", err)
	}
	for range 20 {
		clk.Add(time.Minute)
		s.tick()
	}
	if got := s.Incidents()[0]; got.ID != op.ID || got.Status != StatusOpen {
		t.Errorf("the operator's incident is %s after 20 quiet minutes, want open", got.Status)
	}

	// Everything survives a restart: incidents with their timelines, the
	// app list (from the log, with the store down) and the chart's samples.
	s.Close()
	b.setDown(true)
	s2 := newTestService(t, dir, b, clk)
	snap := s2.Snapshot(context.Background())
	if snap.MessageStore != "unavailable" || len(snap.Apps) != 2 {
		t.Fatalf("after a restart with the store down: store %s, %d apps; want unavailable and both apps", snap.MessageStore, len(snap.Apps))
	}
	if len(snap.Incidents) != 2 || snap.Incidents[0].ID != op.ID || snap.Incidents[1].ID != in.ID || len(snap.Incidents[1].Updates) != 4 {
		t.Fatalf("incidents after a restart = %+v", snap.Incidents)
	}
	s2.mu.Lock()
	n := len(s2.apps["m"].samples)
	s2.mu.Unlock()
	if n < 50 {
		t.Errorf("%d samples of m after a restart, want every minute's", n)
	}
}

func TestRecentlyResolvedOnly(t *testing.T) {
	clk := &fakeClock{t: t0}
	b := &fakeBackend{apps: []chat.App{{ID: "m", Name: "Messenger"}}}
	s := newTestService(t, t.TempDir(), b, clk)
	in, err := s.OpenIncident("m", "Slow history", "degraded", "Loading history is slow.")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(in.ID, "Fixed."); err != nil {
		t.Fatal(err)
	}
	if got := s.Snapshot(context.Background()).Incidents; len(got) != 1 {
		t.Fatalf("a just-resolved incident is not in the status: %+v", got)
	}
	clk.Add(RecentlyResolved)
	if got := s.Snapshot(context.Background()).Incidents; len(got) != 0 {
		t.Errorf("an incident resolved a week ago is still in the status: %+v", got)
	}
	if got := s.Incidents(); len(got) != 1 {
		t.Errorf("operators see %d incidents, want the old one too", len(got))
	}
}
