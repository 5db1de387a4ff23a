package reliability

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// p99Floor is the least p99 the flood's is compared with.
var p99Floor = map[bool]time.Duration{false: 5 * time.Millisecond, true: 15 * time.Millisecond}[raceEnabled]

var noLimits = flag.Bool("nolimits", false, "run the isolation test without admission control, to see it fail")

// isolation measures the calm app's send latency with and without a flood
// from the other app.
type isolation struct {
	n         *node
	calmPaths []string
	calmToks  []string

	mu      sync.Mutex // guards samples and refused
	samples []sample
	refused []string

	flooding atomic.Bool
	accepted atomic.Int64 // flood sends acknowledged
	limited  atomic.Int64 // flood sends refused (error frames)
	offered  atomic.Int64
}

type sample struct {
	at   time.Time
	took time.Duration
}

// One app floods far beyond its limits from many WebSocket connections
// while another sends at a steady low rate over REST: the calm app's p99
// stays within twice its p99 without the flood, and none of its sends is
// refused. Rounds without and with the flood alternate and the medians of
// their p99s are compared, so that a hiccup of a shared machine does not
// decide the outcome. Run with -args -nolimits to watch it fail without
// admission control.
func TestFloodedAppDoesNotSlowOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test of about 20s")
	}
	n := newNode(t, nodeOpts{noAdmission: *noLimits})
	ctx := context.Background()
	n.app("flood")
	n.app("calm")
	// The flood app's limits, set as an operator would.
	if _, err := n.admin.SetLimits(ctx, "flood", map[string]int{"sends_per_second": 20, "burst": 5, "max_concurrent_requests": 16}); err != nil {
		t.Fatal(err)
	}
	iso := &isolation{n: n}

	const calmUsers, calmEvery = 12, 125 * time.Millisecond // 96 sends/s, 8 per user
	for i := range calmUsers {
		tok := n.token("calm", fmt.Sprint("c", i))
		c, _, err := n.user("calm", fmt.Sprint("c", i), nil).CreateConversation(ctx, []string{fmt.Sprintf("calm:p%d", i)}, "")
		if err != nil {
			t.Fatal(err)
		}
		iso.calmToks = append(iso.calmToks, tok)
		iso.calmPaths = append(iso.calmPaths, "/v1/conversations/"+c.ID+"/messages")
	}
	// The flood: many sockets, each sending as fast as its share of the
	// offered rate, far beyond the app's 20 per second.
	sockets, rate := 32, 2000.0
	if raceEnabled {
		sockets, rate = 16, 400
	}
	type floodConn struct {
		c    *websocket.Conn
		conv string
	}
	var floods []floodConn
	for i := range sockets {
		u := fmt.Sprint("f", i)
		// Groups of 32: each message the store takes fans out to 32
		// streams, so that the flood, let through, would swamp the store.
		var members []string
		for j := range 31 {
			members = append(members, fmt.Sprintf("flood:m%d-%d", i, j))
		}
		conv, _, err := n.user("flood", u, nil).CreateConversation(ctx, members, "flood")
		if err != nil {
			t.Fatal(err)
		}
		wsURL := "ws" + strings.TrimPrefix(n.base, "http") + "/v1/ws?after=1&token=" + n.token("flood", u)
		c, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		floods = append(floods, floodConn{c, conv.ID})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, f := range floods {
		wg.Go(func() { iso.floodReader(f.c) })
		wg.Go(func() {
			iso.floodWriter(f.c, f.conv, i, time.Duration(float64(sockets)/rate*float64(time.Second)), stop)
		})
	}
	for i := range calmUsers {
		wg.Go(func() { iso.calm(i, calmEvery, stop) })
	}

	// A measurement is short phases without and with the flood,
	// alternating, pooled: whatever else the machine does falls on both
	// sides alike. A measurement over twice is repeated, and the median of
	// three decides, so that one burst of a shared machine does not.
	const rounds, phase, settle = 12, time.Second, 200 * time.Millisecond
	measure := func() (ratio float64) {
		type window struct {
			from, to time.Time
			flood    bool
		}
		var windows []window
		acc0, off0 := iso.accepted.Load(), iso.offered.Load()
		for range rounds {
			for _, flood := range []bool{false, true} {
				iso.flooding.Store(flood)
				start := time.Now()
				time.Sleep(phase) // the phase's length is the measurement itself
				windows = append(windows, window{start.Add(settle), time.Now(), flood})
			}
			// Without the flood means without its backlog too: wait
			// until every flood frame is answered.
			iso.flooding.Store(false)
			waitFor(t, "the flood's backlog to drain", 2*time.Minute, func() bool {
				return iso.accepted.Load()+iso.limited.Load() >= iso.offered.Load()
			})
		}
		iso.mu.Lock()
		var base, flood []time.Duration
		for _, w := range windows {
			for _, s := range iso.samples {
				if !s.at.Before(w.from) && s.at.Before(w.to) {
					if w.flood {
						flood = append(flood, s.took)
					} else {
						base = append(base, s.took)
					}
				}
			}
		}
		iso.samples = nil
		iso.mu.Unlock()
		if len(base) < 500 || len(flood) < 500 {
			t.Fatalf("only %d and %d calm samples", len(base), len(flood))
		}
		slices.Sort(base)
		slices.Sort(flood)
		p99 := func(l []time.Duration) time.Duration { return l[len(l)*99/100] }
		mb, mf := p99(base), p99(flood)
		floodTime := float64(rounds) * phase.Seconds()
		accepted, offered := iso.accepted.Load()-acc0, iso.offered.Load()-off0
		t.Logf("calm app: %d sends without the flood, p50 %v, p99 %v; %d with it, p50 %v, p99 %v (%.2fx)",
			len(base), base[len(base)/2], mb, len(flood), flood[len(flood)/2], mf, float64(mf)/float64(mb))
		t.Logf("flood app: offered %d sends (%.0f/s), %d accepted (%.1f/s), %d refused",
			offered, float64(offered)/floodTime, accepted, float64(accepted)/floodTime, offered-accepted)
		if !*noLimits {
			// The flood was really far beyond its limits, and held to
			// them (a burst of 5 at each phase's start).
			if offered < 10*accepted {
				t.Errorf("the flood had %d sends offered and %d accepted: not far beyond its limits", offered, accepted)
			}
			if max := int64(20*floodTime*1.2) + 5*rounds; accepted > max {
				t.Errorf("the flood had %d sends accepted in %.0fs at 20/s", accepted, floodTime)
			}
		}
		// Below a floor, the scheduling of a shared 2-core machine
		// decides a p99, not the flood; broken isolation costs tens of
		// milliseconds.
		return float64(mf) / float64(max(mb, p99Floor))
	}
	ratios := []float64{measure()}
	if ratios[0] > 2 {
		ratios = append(ratios, measure(), measure())
		slices.Sort(ratios)
	}
	close(stop)
	for _, f := range floods {
		f.c.Close(websocket.StatusNormalClosure, "")
	}
	wg.Wait()
	if r := ratios[len(ratios)/2]; r > 2 {
		t.Errorf("the calm app's p99 under the other app's flood was %.2f times its p99 without (median of %v): more than twice", r, ratios)
	}
	iso.mu.Lock()
	defer iso.mu.Unlock()
	if len(iso.refused) > 0 {
		t.Errorf("%d calm sends were refused, first: %s", len(iso.refused), iso.refused[0])
	}
}

// calm sends one message every every, steadily, and records each latency.
func (iso *isolation) calm(i int, every time.Duration, stop chan struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		at := time.Now()
		status, _, took := iso.n.post(iso.calmPaths[i], iso.calmToks[i], fmt.Sprintf(`{"client_id":"c%d","body":"steady"}`, seq))
		iso.mu.Lock()
		if status != 201 {
			iso.refused = append(iso.refused, fmt.Sprintf("status %d", status))
		}
		iso.samples = append(iso.samples, sample{at, took})
		iso.mu.Unlock()
	}
}

// floodBody is the flood's message body, JSON-quoted once.
var floodBody = func() string {
	b, _ := json.Marshal(strings.Repeat("flood ", 170))
	return string(b)
}()

// floodWriter sends a frame every interval while the flood is on.
func (iso *isolation) floodWriter(c *websocket.Conn, conv string, i int, interval time.Duration, stop chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if !iso.flooding.Load() {
			continue
		}
		frame := fmt.Sprintf(`{"type":"send","ref":"r%d","conversation_id":%q,"client_id":"f%d-%d","body":%s}`, seq, conv, i, seq, floodBody)
		if err := c.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
			return
		}
		iso.offered.Add(1)
	}
}

// floodReader counts the answers to the flood.
func (iso *isolation) floodReader(c *websocket.Conn) {
	for {
		_, b, err := c.Read(context.Background())
		if err != nil {
			return
		}
		var f struct{ Type string }
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f.Type {
		case "ack":
			iso.accepted.Add(1)
		case "error":
			iso.limited.Add(1)
		}
	}
}
