package status

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/outage/detector"
)

// Backend is what the status side needs of the messaging layer. It may
// fail at any time (the message store is down): the status side then keeps
// answering from its own storage. *messaging.Service implements it.
type Backend interface {
	// Apps lists the registered apps.
	Apps(ctx context.Context) ([]chat.App, error)
	// Authenticate verifies a user token.
	Authenticate(ctx context.Context, token string) (chat.Address, error)
	// Ping checks that the message store can serve.
	Ping(ctx context.Context) error
}

// Config configures a Service. Dir and Backend are required; zero values
// elsewhere mean the defaults named on each field.
type Config struct {
	// Dir holds the status side's own log (incidents, the app list, the
	// last 24 hours of report counts), apart from the message store.
	Dir     string
	Backend Backend
	// Signals are the send counters the messaging layer feeds (pass the
	// same value as messaging.Config.Observer). Nil: a fresh one that
	// nothing feeds, so only reports count.
	Signals *Signals
	// AdminToken authorises the admin calls. Empty: they are all refused.
	AdminToken string
	// Logger. Nil: discard.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Interval is how often each app's signals are sampled and fed to its
	// monitor. Zero: one minute.
	Interval time.Duration
	// ReportBurst and ReportEvery limit the reports of one client address:
	// ReportBurst at once, then one every ReportEvery. Zero: 5 and one
	// minute, so one address adds at most 20 to an app's 15-minute count,
	// under the cold-start threshold of 50.
	ReportBurst int
	ReportEvery time.Duration
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For is believed. Empty: none; the client address is the
	// connection's.
	TrustedProxies []netip.Prefix
	// Monitor tunes each app's state machine. Zero: the detector's
	// defaults (cold start at 50 reporters, recover after 15 minutes).
	Monitor detector.MonitorConfig
}

// The signals each app's monitor watches, in this order.
const (
	sigReports = iota
	sigFailed
	sigLatency
	sigVolume
	numSignals
)

func signals() []detector.Signal {
	failed := detector.DefaultConfig()
	failed.MinAbs, failed.MinRatio = 10, 1 // 10 more failed sends a minute, and double the norm
	latency := detector.DefaultConfig()
	latency.MinAbs, latency.MinRatio = 250, 1 // 250 ms slower, and double the norm
	volume := detector.DefaultConfig()
	volume.MinAbs, volume.MinRatio = 50, 1 // 50 messages a minute, and half (or double) the norm
	return []detector.Signal{
		sigReports: {Name: "reports", Dir: detector.Up, Config: detector.DefaultConfig(), Reporters: true},
		sigFailed:  {Name: "failed sends", Dir: detector.Up, Config: failed},
		sigLatency: {Name: "send latency (95th percentile, ms)", Dir: detector.Up, Config: latency},
		sigVolume:  {Name: "message volume", Dir: detector.Both, Config: volume},
	}
}

// Service is the status side: it counts problem reports, feeds each app's
// monitor once a minute, keeps the incidents, and serves the status API,
// page, event stream and feed. It is safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	backend Backend
	sig     *Signals
	db      *statusLog
	hub     *hub
	mcfg    detector.MonitorConfig

	quit      chan struct{}
	done      chan struct{}
	poke      chan string // apps whose report count reached the cold-start threshold
	closeOnce sync.Once
	closeErr  error

	refreshMu   sync.Mutex // one refresh of the app list at a time; guards refreshedAt
	refreshedAt time.Time  // when the last refresh began

	probeMu  sync.Mutex // guards storeOK, probedAt
	storeOK  bool
	probedAt time.Time

	mu    sync.Mutex // guards the fields below
	apps  map[string]*appState
	order []string // app ids, sorted
	inc   incidents
	lim   *limiter
	ticks int
}

type appState struct {
	id, name string
	mon      *detector.Monitor
	state    detector.State
	since    time.Time // when state last changed, or the app was first watched
	reports  appReports
	norm     float64  // the reports' norm at the last observation
	samples  []sample // the last ChartSpan, oldest first
	notes    []Note   // the latest notes, oldest first
}

// Note is the note of a problem report, kept for operators.
type Note struct {
	At      time.Time `json:"at"`
	Problem string    `json:"problem"`
	Note    string    `json:"note"`
}

const notesKept = 20

// Open reads the status log in cfg.Dir, takes the app list from the
// backend if it answers, takes a first sample, and starts sampling every
// Interval. Close stops it.
func Open(cfg Config) (*Service, error) {
	if cfg.Dir == "" || cfg.Backend == nil {
		return nil, errors.New("status: Dir and Backend are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Signals == nil {
		cfg.Signals = NewSignals()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.ReportBurst <= 0 {
		cfg.ReportBurst = 5
	}
	if cfg.ReportEvery <= 0 {
		cfg.ReportEvery = time.Minute
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger, now: cfg.Now, backend: cfg.Backend, sig: cfg.Signals,
		hub: newHub(), mcfg: cfg.Monitor.WithDefaults(),
		quit: make(chan struct{}), done: make(chan struct{}), poke: make(chan string, 64),
		apps: map[string]*appState{}, lim: newLimiter(cfg.ReportBurst, cfg.ReportEvery),
	}
	now := s.now().UTC()
	db, ld, err := openLog(cfg.Dir, now)
	if err != nil {
		return nil, err
	}
	s.db = db
	for _, in := range ld.incidents {
		s.inc.put(in)
	}
	s.setApps(ld.apps, now)
	for _, smp := range ld.samples {
		if a := s.apps[smp.App]; a != nil {
			a.samples = append(a.samples, smp)
			a.norm = smp.Norm
		}
	}
	s.tick()
	go s.loop()
	return s, nil
}

// Close stops the sampling, ends the event streams and closes the log.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		s.hub.close()
		s.closeErr = s.db.close()
	})
	return s.closeErr
}

// CloseStreams ends every event stream, so that an HTTP server's Shutdown
// does not wait for them (register it with http.Server.RegisterOnShutdown).
func (s *Service) CloseStreams() { s.hub.close() }

func (s *Service) loop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.tick()
		case id := <-s.poke:
			s.evaluate(id)
		}
	}
}

// setApps adds the apps of list not watched yet and renames the others;
// apps are never deleted. It reports whether anything changed. s.mu held.
func (s *Service) setApps(list []appInfo, now time.Time) bool {
	changed := false
	for _, ai := range list {
		a := s.apps[ai.ID]
		if a == nil {
			a = &appState{id: ai.ID, name: ai.Name, state: detector.Operational, since: now,
				mon: detector.NewMonitor(s.mcfg, signals())}
			s.apps[ai.ID] = a
			s.order = append(s.order, ai.ID)
			changed = true
		} else if a.name != ai.Name {
			a.name = ai.Name
			changed = true
		}
	}
	if changed {
		slices.Sort(s.order)
	}
	return changed
}

// appList is the app list as the log keeps it. s.mu held.
func (s *Service) appList() []appInfo {
	list := make([]appInfo, 0, len(s.order))
	for _, id := range s.order {
		list = append(list, appInfo{ID: id, Name: s.apps[id].name})
	}
	return list
}

// refreshApps copies the app list from the backend, so that an app
// registered before the call is known after it. Callers that wait for a
// refresh that began after they asked take its answer: a crowd of status
// requests costs one listing at a time. While the message store is known
// to be down (for under two seconds) it keeps the copy without asking.
func (s *Service) refreshApps(ctx context.Context) {
	asked := time.Now()
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if s.refreshedAt.After(asked) || s.storeDownRecently() {
		return
	}
	s.refreshedAt = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	list, err := s.backend.Apps(ctx)
	s.setStore(err == nil)
	if err != nil {
		return
	}
	infos := make([]appInfo, len(list))
	for i, a := range list {
		infos[i] = appInfo{ID: a.ID, Name: a.Name}
	}
	s.mu.Lock()
	now := s.now().UTC()
	known := len(s.order)
	changed := s.setApps(infos, now)
	if changed {
		s.db.add(record{Apps: s.appList()})
	}
	if len(s.order) > known {
		// A new app's monitor and chart start where the watching does, so
		// that a burst of reports right after is measured against it
		// rather than taken for the norm.
		for _, a := range s.apps {
			if len(a.samples) == 0 {
				s.observe(a, now, []float64{float64(a.reports.count(now)), math.NaN(), math.NaN(), math.NaN()})
				smp := sample{App: a.id, At: now, Reports: a.reports.count(now), Norm: a.norm}
				a.samples = append(a.samples, smp)
				s.db.add(record{Sample: &smp})
			}
		}
	}
	s.mu.Unlock()
	if changed {
		s.db.flush()
		s.hub.notify()
	}
}

func (s *Service) storeDownRecently() bool {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	return !s.probedAt.IsZero() && !s.storeOK && time.Since(s.probedAt) < 2*time.Second
}

// setStore records whether the message store answered.
func (s *Service) setStore(ok bool) {
	s.probeMu.Lock()
	changed := ok != s.storeOK || s.probedAt.IsZero()
	s.storeOK, s.probedAt = ok, time.Now()
	s.probeMu.Unlock()
	if changed {
		if ok {
			s.log.Info("status: the message store answers again")
		} else {
			s.log.Warn("status: the message store is unavailable; the status page carries on from its own storage")
		}
		s.hub.notify()
	}
}

// storeAvailable says whether the message store answers, asking it at
// most every two seconds.
func (s *Service) storeAvailable(ctx context.Context) bool {
	s.probeMu.Lock()
	if !s.probedAt.IsZero() && time.Since(s.probedAt) < 2*time.Second {
		ok := s.storeOK
		s.probeMu.Unlock()
		return ok
	}
	s.probeMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	ok := s.backend.Ping(ctx) == nil
	s.setStore(ok)
	return ok
}

// tick samples every app's signals and feeds its monitor.
func (s *Service) tick() {
	s.refreshApps(context.Background())
	s.mu.Lock()
	now := s.now().UTC() // under mu: no observation is older than one already made
	for _, id := range s.order {
		a := s.apps[id]
		ss := s.sig.take(id)
		vals := make([]float64, numSignals)
		vals[sigReports] = float64(a.reports.count(now))
		vals[sigFailed] = ss.failed
		vals[sigLatency] = ss.p95
		vals[sigVolume] = ss.sent
		s.observe(a, now, vals)
		smp := sample{App: id, At: now, Reports: int(vals[sigReports]), Norm: a.norm}
		cut := now.Add(-ChartSpan)
		i := 0
		for i < len(a.samples) && !a.samples[i].At.After(cut) {
			i++
		}
		a.samples = append(a.samples[i:], smp)
		s.db.add(record{Sample: &smp})
	}
	s.lim.prune(now)
	s.inc.trim()
	s.ticks++
	if s.ticks%60 == 0 {
		if err := s.db.compact(s.liveLocked(now)); err != nil {
			s.log.Error("status: compacting the log", "err", err)
		}
	}
	s.mu.Unlock()
	if err := s.db.flush(); err != nil {
		s.log.Error("status: writing the log", "err", err)
	}
	s.hub.notify()
}

// liveLocked is everything the log must keep. s.mu held.
func (s *Service) liveLocked(now time.Time) loaded {
	ld := loaded{apps: s.appList()}
	for _, in := range s.inc.list {
		c := in.clone()
		ld.incidents = append(ld.incidents, &c)
	}
	for _, id := range s.order {
		ld.samples = append(ld.samples, s.apps[id].samples...)
	}
	return ld
}

// evaluate feeds app's report count to its monitor now, between two
// ticks, so that a burst of reports turns it to outage at once.
func (s *Service) evaluate(id string) {
	s.mu.Lock()
	now := s.now().UTC()
	a := s.apps[id]
	if a == nil {
		s.mu.Unlock()
		return
	}
	vals := []float64{float64(a.reports.count(now)), math.NaN(), math.NaN(), math.NaN()}
	s.observe(a, now, vals)
	s.mu.Unlock()
	s.db.flush()
	s.hub.notify()
}

// observe feeds vals to a's monitor and follows up a change of state in
// the incidents. s.mu held.
func (s *Service) observe(a *appState, now time.Time, vals []float64) {
	st := a.mon.Observe(now, vals)
	if p := st.Points[sigReports]; !p.Time.IsZero() {
		a.norm = p.Norm
	}
	if st.Changed {
		s.log.Info("status: app state changed", "app", a.id, "from", a.state, "to", st.State, "reason", st.Reason)
		a.state, a.since = st.State, now
		if in := s.inc.monitorChange(a.id, a.name, st, now); in != nil {
			s.saveIncident(in)
		}
	}
	// An incident left open across a restart (the new monitor starts
	// operational) resolves once the app has been quiet for Recover.
	if a.state == detector.Operational && now.Sub(a.since) >= s.mcfg.Recover {
		if in := s.inc.openFor(a.id); in != nil {
			in.add(Update{At: now, By: ByMonitor, State: string(detector.Operational),
				Message: "all signals normal for " + s.mcfg.Recover.String()})
			in.resolve(now)
			s.saveIncident(in)
		}
	}
}

// saveIncident logs in's current state. s.mu held.
func (s *Service) saveIncident(in *Incident) {
	c := in.clone()
	s.db.add(record{Incident: &c})
}

// appNamed returns whether id is a registered app, asking the backend
// when it is not known yet.
func (s *Service) knownApp(ctx context.Context, id string) bool {
	s.mu.Lock()
	_, ok := s.apps[id]
	s.mu.Unlock()
	if ok {
		return true
	}
	s.refreshApps(ctx)
	s.mu.Lock()
	_, ok = s.apps[id]
	s.mu.Unlock()
	return ok
}

// allow takes one of addr's report tokens at now.
func (s *Service) allow(now time.Time, addr netip.Addr) (bool, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lim.allow(now, clientKey(addr))
}

// report counts reporter's report of problem with app at now (once per
// ReportWindow) and keeps its note. When the count reaches the cold-start
// threshold the app's monitor is fed at once rather than at the next tick.
func (s *Service) report(now time.Time, app, reporter, problem, note string) bool {
	pi := problemIndex(problem)
	s.mu.Lock()
	a := s.apps[app]
	if a == nil || pi < 0 {
		s.mu.Unlock()
		return false
	}
	ok := a.reports.add(now, reporter, pi)
	n := a.reports.count(now)
	if ok && note != "" {
		if len(a.notes) >= notesKept {
			a.notes = slices.Delete(a.notes, 0, 1)
		}
		a.notes = append(a.notes, Note{At: now, Problem: problem, Note: note})
	}
	s.mu.Unlock()
	if ok && float64(n) >= s.mcfg.ColdStartReporters && float64(n-1) < s.mcfg.ColdStartReporters {
		select {
		case s.poke <- app:
		default: // a poke is pending already; the tick follows anyway
		}
	}
	return ok
}
