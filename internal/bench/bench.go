package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/cputime"
)

// Workloads.
const (
	Pairs  = "pairs"  // users in pairs, one app each side, a direct conversation per pair
	Groups = "groups" // users in groups of GroupSize, apps mixed, a group conversation each
)

// Config describes a run. Zero values mean the defaults named on each field.
type Config struct {
	// Server is the base URL of a running server (http://host:port), with
	// AdminToken its admin token; several, separated by commas, are the
	// nodes of one deployment (sharing a store and a bus), and user i then
	// streams from node i mod n, so that a conversation's members are on
	// different nodes. Empty: start a node in this process on 127.0.0.1
	// with Pebble in a temporary directory, removed afterwards.
	Server     string
	AdminToken string
	// Store is the in-process server's store: "pebble" (durable: every
	// message is synced to disk before its ack) or "memory" (not durable;
	// it shows what the rest of the path costs). Empty: "pebble". A child
	// server's command line (ServerCommand) chooses its own.
	Store string
	// Workload is Pairs or Groups. Empty: Pairs.
	Workload string
	// GroupSize is the members per group of the Groups workload. Zero: 8.
	GroupSize int
	// Users is how many users take part; it must be a multiple of 2
	// (pairs) or of GroupSize. Zero: 200.
	Users int
	// Window is the closed loop's messages in flight per user: each user
	// sends again as soon as one of its messages is acknowledged. Zero: 16.
	// Ignored when Rate is set.
	Window int
	// Rate, when above zero, makes the loop open: messages are sent at Rate
	// per second in all, spread evenly over the users, whatever the answers.
	Rate float64
	// Duration is the measured time; Warmup runs the same load before it,
	// unmeasured. Zero: 10s and 2s; a negative Warmup means none.
	Duration time.Duration
	Warmup   time.Duration
	// Drain is how long the run waits, once sending stops, for the next
	// answer or delivery while some are missing: when none comes for that
	// long (or after twice the sending time plus Drain in all), what is
	// acknowledged and still missing is lost. Zero: 10s.
	Drain time.Duration
	// Unbatched is the relay's only (Relay): every frame is written in a
	// system call of its own, at both ends.
	Unbatched bool

	// BodySize is the length of each message body in bytes (at least the
	// 20 the send time takes). Zero: 64.
	BodySize int

	// Progress receives a progress line while the run goes on. Nil: none.
	// Terminal says Progress is a terminal, where one line is redrawn in
	// place; otherwise a plain line is written every ProgressInterval.
	Progress         io.Writer
	Terminal         bool
	ProgressInterval time.Duration // zero: 1s on a terminal, 5s otherwise
	// ServerLogger is the in-process server's logger. Nil: discard.
	ServerLogger *slog.Logger
	// ServerCommand, when set and Server is empty, starts the server as a
	// child process instead (see IdleConfig.ServerCommand), so that its CPU
	// time is told apart from the load generator's. ServerEnv is added to
	// its environment.
	ServerCommand []string
	ServerEnv     []string
	// ServerPID is the process id of a Server running on this machine,
	// whose CPU time is then read from /proc. Zero: not read.
	ServerPID int
}

func (c *Config) setDefaults() error {
	if c.Workload == "" {
		c.Workload = Pairs
	}
	if c.Store == "" {
		c.Store = "pebble"
	}
	if c.Store != "pebble" && c.Store != "memory" {
		return fmt.Errorf("bench: store %q: use pebble or memory", c.Store)
	}
	if c.Server != "" && c.Store != "pebble" {
		return errors.New("bench: --store applies only to a server bench starts")
	}
	if c.GroupSize == 0 {
		c.GroupSize = 8
	}
	if c.Users == 0 {
		c.Users = 200
	}
	if c.Window == 0 {
		c.Window = 16
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Drain == 0 {
		c.Drain = 10 * time.Second
	}
	if c.BodySize == 0 {
		c.BodySize = 64
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 5 * time.Second
		if c.Terminal {
			c.ProgressInterval = time.Second
		}
	}
	if c.ServerLogger == nil {
		c.ServerLogger = slog.New(slog.DiscardHandler)
	}
	size := 2
	switch c.Workload {
	case Pairs:
	case Groups:
		if c.GroupSize < 2 || c.GroupSize > 256 {
			return fmt.Errorf("bench: group size %d: must be between 2 and 256", c.GroupSize)
		}
		size = c.GroupSize
	default:
		return fmt.Errorf("bench: unknown workload %q: use pairs or groups", c.Workload)
	}
	if c.Users < size || c.Users%size != 0 {
		return fmt.Errorf("bench: %d users do not make whole %s of %d", c.Users, c.Workload, size)
	}
	if c.Window < 1 {
		return fmt.Errorf("bench: window %d: must be at least 1", c.Window)
	}
	if c.Rate < 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate) {
		return fmt.Errorf("bench: rate %v: must be a positive number of messages per second", c.Rate)
	}
	if c.Duration < 0 || c.Drain < 0 {
		return errors.New("bench: duration and drain must be positive")
	}
	if c.BodySize < minBody || c.BodySize > 4096 {
		return fmt.Errorf("bench: body size %d: must be between %d and 4096 bytes", c.BodySize, minBody)
	}
	if c.Server == "" && c.AdminToken != "" {
		return errors.New("bench: an admin token without a server; give --server too, or neither")
	}
	if c.Server != "" && c.AdminToken == "" {
		return errors.New("bench: a server needs its admin token")
	}
	if strings.Contains(c.Server, ",") && c.ServerPID != 0 {
		return errors.New("bench: a server's process id names one server; with several, give none")
	}
	return nil
}

// Result is what a run measured. Counts under "measured" cover the
// measured window only (after the warmup); lost, duplicated, out_of_order,
// errors and reconnects cover the whole run.
type Result struct {
	Workload      string  `json:"workload"`
	Users         int     `json:"users"`
	GroupSize     int     `json:"group_size"`
	Conversations int     `json:"conversations"`
	Loop          string  `json:"loop"`             // "closed" or "open"
	Window        int     `json:"window,omitempty"` // closed loop
	Rate          float64 `json:"rate,omitempty"`   // open loop, messages per second
	BodySize      int     `json:"body_size"`
	Server        string  `json:"server"` // "in-process" or the URL
	DurationS     float64 `json:"duration_s"`
	WarmupS       float64 `json:"warmup_s"`

	// Measured: sends made, and deliveries to receivers (each message
	// reaches every member but its sender), in the measured window.
	Sent            int64   `json:"sent"`
	Delivered       int64   `json:"delivered"`
	SentPerSec      float64 `json:"sent_per_sec"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	// End-to-end latency of the messages sent in the measured window: from
	// the send (open loop: from when it was due, so that a stall counts in
	// full) to the receiver's stream handing it over.
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	// From the send to its acknowledgement (stored durably).
	AckP50Ms float64 `json:"ack_p50_ms"`
	AckP99Ms float64 `json:"ack_p99_ms"`

	// The whole run. Lost: acknowledged, and not at some receiver after
	// the drain. Duplicated: arrivals of a message already there.
	// OutOfOrder: first arrivals after a later message of the conversation.
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	OutOfOrder int64 `json:"out_of_order"`
	// Errors: sends answered with an error, and stream connections that
	// failed or dropped (each also counts in Reconnects).
	Errors     int64  `json:"errors"`
	Reconnects int64  `json:"reconnects"`
	FirstError string `json:"first_error,omitempty"`
	// The whole run, warmup and drain included: sends the server
	// acknowledged, and first arrivals at receivers other than the sender.
	// With nothing lost, DeliveredTotal is AckedTotal times GroupSize-1.
	AckedTotal     int64 `json:"acked_total"`
	DeliveredTotal int64 `json:"delivered_total"`
	// Unacked: sends still unanswered when the drain ended.
	Unacked int64   `json:"unacked"`
	DrainS  float64 `json:"drain_s"`

	// CPUCores is this process's CPU time over the measured window divided
	// by its length: the server's and the load generator's together when
	// the server runs in process.
	CPUCores float64 `json:"cpu_cores"`
	// CPUPerDelivery is that CPU time per delivery in the window, in
	// microseconds: unlike the rates, it hardly depends on what else the
	// machine runs.
	CPUPerDeliveryUs float64 `json:"cpu_us_per_delivery"`
	// The same for the server's process, when it is another process on
	// this machine (ServerCommand or ServerPID).
	ServerPID              int        `json:"server_pid,omitempty"`
	ServerCPUCores         float64    `json:"server_cpu_cores,omitempty"`
	ServerCPUPerDeliveryUs float64    `json:"server_cpu_us_per_delivery,omitempty"`
	NumCPU                 int        `json:"num_cpu"`
	GoMaxProcs             int        `json:"gomaxprocs"` // this process's, during the run
	LoadAvg                [3]float64 `json:"load_avg"`   // 1, 5 and 15 minutes, at the end
	Warning                string     `json:"warning,omitempty"`
	LoadBefore             float64    `json:"load_avg_1m_before"`
	// Yardstick: the relay's rate around the run (RunWithYardstick).
	Yardstick *Yardstick `json:"yardstick,omitempty"`
}

// minBody is the room the send time takes in a body: up to 19 digits of
// nanoseconds and a space.
const minBody = 20

// run is one run's shared state.
type run struct {
	cfg    Config
	users  []*user
	groups [][]int
	led    *ledger
	epoch  time.Time // sending starts; body times are nanoseconds since
	warmNs int64     // the measured window: [warmNs, endNs) since epoch
	endNs  int64

	sent        counter // every send the stream took
	sentWin     counter // sends due in the measured window
	acked       counter
	expected    counter // deliveries the acknowledged sends call for
	delivered   counter // first arrivals at a receiver other than the sender
	deliveredWn counter // of which in the measured window
	errs        atomic.Int64
	reconnects  atomic.Int64
	unacked     atomic.Int64
	firstErr    atomic.Pointer[string]

	lat, ack *shardedHist
}

func (r *run) now() int64 { return int64(time.Since(r.epoch)) }

// A counter counts per user, in shards a cache line apart, so that the
// goroutines of users on different cores do not take one line from each
// other at every message; reading it sums the shards.
type counter struct{ shards []shard }

type shard struct {
	n atomic.Int64
	_ [56]byte
}

func newCounter(users int) counter { return counter{shards: make([]shard, users)} }

func (c *counter) add(user int, d int64) { c.shards[user].n.Add(d) }

func (c *counter) load() int64 {
	var n int64
	for i := range c.shards {
		n += c.shards[i].n.Load()
	}
	return n
}

// sleepUntil waits until ns after epoch; false when ctx ends first.
func sleepUntil(ctx context.Context, epoch time.Time, ns int64) bool {
	t := time.NewTimer(time.Until(epoch.Add(time.Duration(ns))))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *run) fail(err error) {
	r.errs.Add(1)
	s := err.Error()
	r.firstErr.CompareAndSwap(nil, &s)
}

// Run sets up the users and conversations, runs the workload and returns
// what it measured. It returns an error when the setup fails or ctx ends;
// failures during the run are counted in the Result instead.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Unbatched {
		return nil, errors.New("bench: unbatched writes are the relay's only (--relay)")
	}
	loadBefore := loadAvg()[0]
	var (
		tgt *target
		pid = cfg.ServerPID
		err error
	)
	if cfg.Server == "" && len(cfg.ServerCommand) > 0 {
		tgt, pid, err = startChild(ctx, cfg.ServerCommand, cfg.ServerEnv)
	} else {
		tgt, err = connectTarget(cfg.Server, cfg.AdminToken, cfg.Store, cfg.ServerLogger)
	}
	if err != nil {
		return nil, err
	}
	defer tgt.stop()

	r := &run{cfg: cfg, lat: newShardedHist(), ack: newShardedHist()}
	for _, c := range []*counter{&r.sent, &r.sentWin, &r.acked, &r.expected, &r.delivered, &r.deliveredWn} {
		*c = newCounter(cfg.Users)
	}
	p := newProgress(cfg.Progress, cfg.Terminal)
	p.note(fmt.Sprintf("setting up %d users on %s", cfg.Users, tgt.describe()))

	hc := benchHTTPClient()
	defer hc.CloseIdleConnections()
	adm := client.NewAdmin(tgt.base, tgt.adminToken, &client.Options{HTTPClient: hc})
	appA, appB, warn, err := benchApps(ctx, adm)
	if err != nil {
		return nil, err
	}
	if warn != "" {
		p.note("warning: " + warn)
	}
	total := cfg.Warmup + cfg.Duration + cfg.Drain
	ttl := int((total + time.Hour).Seconds())
	r.users, err = makeUsers(tgt.nodes(), hc, appA, appB, cfg.Users, max(1024, cfg.Window), ttl)
	if err != nil {
		return nil, err
	}
	size := 2
	if cfg.Workload == Groups {
		size = cfg.GroupSize
	}
	for g := range cfg.Users / size {
		ms := make([]int, size)
		for i := range ms {
			ms[i] = g*size + i
		}
		r.groups = append(r.groups, ms)
	}
	r.led = newLedger(r.groups, cfg.Users)
	if err := createConversations(ctx, r.users, r.groups); err != nil {
		return nil, err
	}

	// Connect everyone, and start each receiver at once so that the
	// stream's events never back up; wait until every stream is live.
	var receivers, senders, ackers sync.WaitGroup
	live := make(chan struct{}, cfg.Users)
	defer func() {
		// Closing resolves what is left in the outboxes, which ends the
		// ackers, and closes the events, which ends the receivers.
		for _, u := range r.users {
			if u.stream != nil {
				u.stream.Close()
			}
		}
		receivers.Wait()
		ackers.Wait()
	}()
	err = parallel(ctx, len(r.users), 32, func(ctx context.Context, i int) error {
		u := r.users[i]
		s, err := u.client.Connect(ctx, 0)
		if err != nil {
			return fmt.Errorf("bench: connect %s: %w", u.addr, err)
		}
		u.stream = s
		receivers.Go(func() { r.receive(u, live) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	liveBy := time.NewTimer(time.Minute)
	defer liveBy.Stop()
	for range cfg.Users {
		select {
		case <-live:
		case <-liveBy.C:
			return nil, errors.New("bench: streams not live within a minute")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	// Send.
	r.epoch = time.Now()
	r.warmNs = int64(cfg.Warmup)
	r.endNs = int64(cfg.Warmup + cfg.Duration)
	sendCtx, stopSending := context.WithDeadline(ctx, r.epoch.Add(time.Duration(r.endNs)))
	defer stopSending()
	for _, u := range r.users {
		if cfg.Rate > 0 {
			pending := make(chan pend, 1024)
			ackers.Go(func() { r.acker(u, pending) })
			senders.Go(func() {
				defer close(pending)
				r.openLoop(sendCtx, u, pending)
			})
			continue
		}
		senders.Add(1)
		ackers.Go(func() { r.closedLoop(sendCtx, u, senders.Done) })
	}
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	progressWG.Go(func() {
		showProgress(p, progressDone, ticks{every: r.cfg.ProgressInterval, now: r.now, warmNs: r.warmNs, endNs: r.endNs,
			sent: &r.sent, delivered: &r.delivered, lat: r.lat, errs: r.errs.Load})
	})

	// The process's CPU time over the measured window.
	var cpuStart, cpuEnd, srvStart, srvEnd time.Duration
	if sleepUntil(ctx, r.epoch, r.warmNs) {
		cpuStart = cputime.Self()
		srvStart = procCPU(pid)
	}
	if sleepUntil(ctx, r.epoch, r.endNs) {
		cpuEnd = cputime.Self()
		srvEnd = procCPU(pid)
	}
	senders.Wait()
	if ctx.Err() != nil {
		close(progressDone)
		progressWG.Wait()
		return nil, ctx.Err()
	}

	// Drain: wait for the answers, then for the deliveries they call for,
	// for as long as they keep coming: a backlog built up in an overload
	// takes a while to clear, and is late, not lost. The run gives up
	// after Drain without any, or after twice the sending time plus Drain
	// in all.
	drainStart := time.Now()
	drainCap := drainStart.Add(2*(cfg.Warmup+cfg.Duration) + cfg.Drain)
	lastMove, moved := drainStart, int64(-1)
	acked := make(chan struct{})
	go func() { ackers.Wait(); close(acked) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
drain:
	for {
		select {
		case <-ctx.Done():
			break drain
		case <-tick.C:
		}
		now := time.Now()
		if m := r.acked.load() + r.errs.Load() + r.delivered.load(); m != moved {
			lastMove, moved = now, m
		}
		if now.Sub(lastMove) > cfg.Drain || now.After(drainCap) {
			break drain
		}
		select {
		case <-acked:
			if r.delivered.load() >= r.expected.load() {
				break drain
			}
		default:
		}
	}
	drained := time.Since(drainStart)
	close(progressDone)
	progressWG.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Closing resolves what is left in the outboxes (unacked) and ends
	// the receivers; then the ledger is theirs no more.
	parallel(context.Background(), len(r.users), 32, func(_ context.Context, i int) error {
		r.users[i].stream.Close()
		return nil
	})
	receivers.Wait()
	<-acked

	res := &Result{
		Workload:        cfg.Workload,
		Users:           cfg.Users,
		GroupSize:       size,
		Conversations:   len(r.groups),
		BodySize:        cfg.BodySize,
		Server:          tgt.describe(),
		DurationS:       cfg.Duration.Seconds(),
		WarmupS:         cfg.Warmup.Seconds(),
		Sent:            r.sentWin.load(),
		Delivered:       r.deliveredWn.load(),
		SentPerSec:      float64(r.sentWin.load()) / cfg.Duration.Seconds(),
		DeliveredPerSec: float64(r.deliveredWn.load()) / cfg.Duration.Seconds(),
		Errors:          r.errs.Load(),
		Reconnects:      r.reconnects.Load(),
		AckedTotal:      r.acked.load(),
		DeliveredTotal:  r.delivered.load(),
		Unacked:         r.unacked.Load(),
		DrainS:          drained.Seconds(),
		CPUCores:        (cpuEnd - cpuStart).Seconds() / cfg.Duration.Seconds(),
		NumCPU:          runtime.NumCPU(),
		GoMaxProcs:      runtime.GOMAXPROCS(0),
		LoadAvg:         loadAvg(),
		LoadBefore:      loadBefore,
		Warning:         warn,
	}
	if pid != 0 {
		res.ServerPID = pid
		res.ServerCPUCores = (srvEnd - srvStart).Seconds() / cfg.Duration.Seconds()
	}
	if res.Delivered > 0 {
		res.CPUPerDeliveryUs = usPer(cpuEnd-cpuStart, res.Delivered)
		res.ServerCPUPerDeliveryUs = usPer(srvEnd-srvStart, res.Delivered)
	}
	if cfg.Rate > 0 {
		res.Loop, res.Rate = "open", cfg.Rate
	} else {
		res.Loop, res.Window = "closed", cfg.Window
	}
	if s := r.firstErr.Load(); s != nil {
		res.FirstError = *s
	}
	res.Lost, res.Duplicated, res.OutOfOrder = r.led.totals()
	h := r.lat.merged()
	res.P50Ms, res.P90Ms, res.P99Ms, res.P999Ms = ms(h, 50), ms(h, 90), ms(h, 99), ms(h, 99.9)
	res.MaxMs = float64(h.Max()) / 1000
	a := r.ack.merged()
	res.AckP50Ms, res.AckP99Ms = ms(a, 50), ms(a, 99)
	return res, nil
}

// pend is a send awaiting its answer; due is when it was sent (closed
// loop) or due (open loop), in nanoseconds since the epoch.
type pend struct {
	o   *client.Outgoing
	due int64
}

// closedLoop keeps Window of the user's sends in flight: it sends, and
// records each answer, in the order sent, as it frees a slot. Once sending
// ends (stopped) it records the answers still to come. One goroutine does
// both, so that no channel stands between an answer and the next send.
func (r *run) closedLoop(ctx context.Context, u *user, stopped func()) {
	a := r.answers(u)
	defer a.flush()
	buf := make([]byte, 0, r.cfg.BodySize)
	ring := make([]pend, r.cfg.Window) // the sends in flight, oldest at head
	head, n := 0, 0
	for sending := true; sending; {
		for n < len(ring) {
			p, ok := r.send(ctx, u, r.now(), &buf)
			if !ok {
				sending = false
				break
			}
			ring[(head+n)%len(ring)] = p
			n++
		}
		if !sending {
			break
		}
		select {
		case <-ring[head].o.Done():
			a.record(ring[head])
			head, n = (head+1)%len(ring), n-1
		case <-ctx.Done():
			sending = false
		}
	}
	stopped()
	for ; n > 0; n-- {
		a.record(ring[head])
		head = (head + 1) % len(ring)
	}
}

// openLoop sends on a fixed schedule: the user's k-th message is due at
// offset + k*interval, where interval is users/rate, and the users'
// offsets spread them evenly over one interval. A send that falls behind
// its schedule goes out at once and keeps its due time, so the latency of
// a stall is counted in full (no coordinated omission).
func (r *run) openLoop(ctx context.Context, u *user, pending chan<- pend) {
	sch := newSchedule(r.cfg, u.idx, r.endNs)
	defer sch.stop()
	buf := make([]byte, 0, r.cfg.BodySize)
	for k := 0; ; k++ {
		due, ok := sch.wait(ctx, k, r.now)
		if !ok {
			return
		}
		p, ok := r.send(ctx, u, due, &buf)
		if !ok {
			return
		}
		pending <- p
	}
}

// schedule is one user's timetable in an open loop: send k is due at
// offset + k*interval (ns since the epoch), where interval is users/rate
// and the users' offsets spread them evenly over one interval.
type schedule struct {
	interval, offset float64
	endNs            int64
	t                *time.Timer
}

func newSchedule(cfg Config, user int, endNs int64) *schedule {
	interval := float64(cfg.Users) / cfg.Rate * 1e9
	return &schedule{interval: interval, offset: interval * float64(user) / float64(cfg.Users), endNs: endNs, t: time.NewTimer(0)}
}

// wait waits until send k is due, by now, and returns its due time; false
// once k falls at or past the end, or ctx ends. It does not wait for a
// send already late, whose due time stays what the schedule said.
func (s *schedule) wait(ctx context.Context, k int, now func() int64) (int64, bool) {
	due := int64(s.offset + float64(k)*s.interval)
	if due >= s.endNs {
		return 0, false
	}
	if d := time.Duration(due - now()); d > 0 {
		s.t.Reset(d)
		select {
		case <-s.t.C:
		case <-ctx.Done():
			return 0, false
		}
	}
	return due, true
}

func (s *schedule) stop() { s.t.Stop() }

// send puts one message in the user's outbox; it reports false when the
// user should stop sending.
func (r *run) send(ctx context.Context, u *user, due int64, buf *[]byte) (pend, bool) {
	if ctx.Err() != nil {
		return pend{}, false
	}
	body := r.body(*buf, due)
	*buf = body[:0]
	o, err := u.stream.Send(ctx, u.conv, string(body), nil)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(fmt.Errorf("send: %w", err))
		}
		return pend{}, false
	}
	r.sent.add(u.idx, 1)
	if due >= r.warmNs && due < r.endNs {
		r.sentWin.add(u.idx, 1)
	}
	return pend{o, due}, true
}

// body is the send time in decimal nanoseconds since the epoch, a space,
// and padding up to BodySize.
func (r *run) body(buf []byte, due int64) []byte {
	buf = strconv.AppendInt(buf[:0], due, 10)
	buf = append(buf, ' ')
	for len(buf) < r.cfg.BodySize {
		buf = append(buf, 'x')
	}
	return buf
}

// sentAt reads the send time out of a body.
func sentAt(body string) (int64, bool) {
	i := strings.IndexByte(body, ' ')
	if i <= 0 {
		return 0, false
	}
	t, err := strconv.ParseInt(body[:i], 10, 64)
	return t, err == nil
}

// acker records the answers to the user's sends in the order they were
// sent (open loop).
func (r *run) acker(u *user, pending <-chan pend) {
	a := r.answers(u)
	defer a.flush()
	for p := range pending {
		a.record(p)
	}
}

// answers records the answers to one user's sends.
type answers struct {
	r      *run
	u      *user
	fanout int64 // deliveries each message calls for
	h      []int64
}

func (r *run) answers(u *user) *answers {
	return &answers{r: r, u: u, fanout: int64(len(r.groups[r.led.convOf[u.idx]]) - 1), h: make([]int64, 0, 256)}
}

// record waits for p's answer and counts it.
func (a *answers) record(p pend) {
	r, u := a.r, a.u
	sent, err := p.o.Result()
	switch {
	case err == nil:
		r.led.ack(u.idx, sent.Message.Seq)
		r.acked.add(u.idx, 1)
		r.expected.add(u.idx, a.fanout)
		if p.due >= r.warmNs && p.due < r.endNs {
			if a.h = append(a.h, r.now()-p.due); len(a.h) == cap(a.h) {
				a.flush()
			}
		}
	case errors.Is(err, client.ErrClosed):
		r.unacked.Add(1)
	default:
		r.fail(fmt.Errorf("send answered: %w", err))
	}
}

func (a *answers) flush() {
	a.r.ack.record(a.u.idx, a.h)
	a.h = a.h[:0]
}

// receive reads one user's stream: it tells live once, checks and counts
// every message of the others, and times the ones sent in the measured
// window.
func (r *run) receive(u *user, live chan<- struct{}) {
	isLive := false
	h := make([]int64, 0, 32)
	defer func() { r.lat.record(u.idx, h) }()
	// Small batches, so that the progress line's p99 is current.
	for ev := range u.stream.Events() {
		switch {
		case ev.State != nil:
			switch ev.State.State {
			case client.Live:
				if !isLive {
					isLive = true
					live <- struct{}{}
				}
			case client.Connecting:
				r.reconnects.Add(1)
				err := ev.State.Err
				if err == nil {
					err = errors.New("disconnected")
				}
				r.fail(fmt.Errorf("stream of %s: %w", u.addr, err))
			}
		case ev.Update != nil:
			m := ev.Update.Message
			if ev.Update.Type != "message" || m == nil {
				continue
			}
			if m.ConversationID != u.conv {
				r.fail(fmt.Errorf("%s got a message of conversation %s, not its own", u.addr, m.ConversationID))
				continue
			}
			// The sender's own messages come back on its stream: they
			// take part in the order, not in the counts.
			if r.led.deliver(u.idx, m.Seq) == duplicate || m.Sender == u.addr {
				continue
			}
			now := r.now()
			r.delivered.add(u.idx, 1)
			if now >= r.warmNs && now < r.endNs {
				r.deliveredWn.add(u.idx, 1)
			}
			due, ok := sentAt(m.Body)
			if !ok {
				r.fail(fmt.Errorf("%s got a message with an unreadable body %.40q", u.addr, m.Body))
				continue
			}
			if due >= r.warmNs && due < r.endNs {
				if h = append(h, now-due); len(h) == cap(h) {
					r.lat.record(u.idx, h)
					h = h[:0]
				}
			}
		}
	}
}

// shardedHist is a latency histogram in microseconds that many goroutines
// record into: each records batches into one of a few shards, so that
// neither a lock per value nor a histogram per user (100 KiB each) is
// needed.
type shardedHist struct {
	shards [16]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
	}
}

func newShardedHist() *shardedHist {
	s := &shardedHist{}
	for i := range s.shards {
		// 1 µs to 10 minutes, 3 significant digits.
		s.shards[i].h = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	}
	return s
}

// record adds durations in nanoseconds.
func (s *shardedHist) record(who int, ns []int64) {
	if len(ns) == 0 {
		return
	}
	sh := &s.shards[who%len(s.shards)]
	sh.mu.Lock()
	for _, v := range ns {
		sh.h.RecordValue(max(v/1000, 1)) // beyond the range: an error we can ignore; max says so
	}
	sh.mu.Unlock()
}

func (s *shardedHist) merged() *hdrhistogram.Histogram {
	out := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		out.Merge(sh.h)
		sh.mu.Unlock()
	}
	return out
}

// ms is the quantile q (in percent) of a histogram in microseconds, in
// milliseconds.
func ms(h *hdrhistogram.Histogram, q float64) float64 {
	return float64(h.ValueAtQuantile(q)) / 1000
}

// procCPU is the user plus system CPU time of process pid so far, from
// /proc/PID/stat; zero when pid is zero or unreadable.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after it. utime and stime are fields 14 and 15, in clock ticks
	// (USER_HZ, 100 per second on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * (time.Second / 100)
}

// loadAvg reads the machine's load averages; zeros where it cannot.
func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}
