package detector

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// A synthetic stream of problem reports, one observation a minute: the
// number of reports in the last 15 minutes, as the status service samples
// it. Reports arrive as a Poisson process whose rate follows the time of
// day (a low at 04:00, a peak at 16:00, nights at 6% of the peak) and the
// week (weekends at 70%), times a drift, plus injected outages.
type stream struct {
	rng    *rand.Rand
	start  time.Time
	peak   float64                   // reports a minute at the daily peak
	drift  func(day float64) float64 // multiplies the rate; nil is 1
	extra  func(minute int) float64  // extra reports a minute; nil is 0
	window [15]float64
	sum    float64
	minute int
}

func newStream(seed uint64, peak float64) *stream {
	return &stream{
		rng:   rand.New(rand.NewPCG(seed, 0x5eed)),
		start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), // a Monday
		peak:  peak,
	}
}

func (s *stream) rate(m int) float64 {
	t := s.start.Add(time.Duration(m) * time.Minute)
	h := float64(t.Hour()) + float64(t.Minute())/60
	shape := 0.06 + 0.94*math.Pow(0.5-0.5*math.Cos(2*math.Pi*(h-4)/24), 1.5)
	r := s.peak * shape
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		r *= 0.7
	}
	if s.drift != nil {
		r *= s.drift(float64(m) / 1440)
	}
	return r
}

func (s *stream) poisson(l float64) float64 {
	if l > 30 {
		return math.Max(0, math.Round(l+math.Sqrt(l)*s.rng.NormFloat64()))
	}
	k, p, e := 0.0, 1.0, math.Exp(-l)
	for {
		p *= s.rng.Float64()
		if p <= e {
			return k
		}
		k++
	}
}

// next returns the time and the 15-minute count of the next minute.
func (s *stream) next() (time.Time, float64) {
	l := s.rate(s.minute)
	if s.extra != nil {
		l += s.extra(s.minute)
	}
	n := s.poisson(l)
	i := s.minute % len(s.window)
	s.sum += n - s.window[i]
	s.window[i] = n
	t := s.start.Add(time.Duration(s.minute) * time.Minute)
	s.minute++
	return t, s.sum
}

type injected struct {
	day, hour, minute int     // start, from the stream's start
	length            int     // minutes
	perMinute         float64 // extra reports a minute
}

func (o injected) first() int { return o.day*1440 + o.hour*60 + o.minute }

func reportsMonitor() *Monitor {
	return NewMonitor(DefaultMonitorConfig(), []Signal{{Name: "reports", Dir: Up, Reporters: true}})
}

const week = 7 * 1440

// Outages of several sizes and lengths, by day and by night, on weekdays
// and weekends, after three weeks of learning: each is flagged within 5
// minutes of its start, turns the app from operational to degraded or
// outage and back through recovering exactly once (no flapping), and
// nothing else is ever flagged.
func TestInjectedOutages(t *testing.T) {
	outages := []injected{
		{day: 21, hour: 14, length: 10, perMinute: 40}, // short, at the peak
		{day: 22, hour: 3, length: 45, perMinute: 8},   // small, at night
		{day: 23, hour: 10, minute: 30, length: 180, perMinute: 120},
		{day: 25, hour: 19, length: 480, perMinute: 600}, // the big one
		{day: 27, hour: 16, length: 30, perMinute: 40},   // Saturday peak
		{day: 29, hour: 5, minute: 15, length: 120, perMinute: 20},
		{day: 31, hour: 12, length: 20, perMinute: 300},
		{day: 34, hour: 23, length: 60, perMinute: 10},           // Sunday night
		{day: 36, hour: 8, length: 90, perMinute: 60, minute: 7}, // ragged, below
	}
	ragged := len(outages) - 1
	s := newStream(1, 20)
	s.extra = func(m int) float64 {
		for i, o := range outages {
			if m >= o.first() && m < o.first()+o.length {
				if i == ragged && (m-o.first())/3%2 == 1 {
					return 0 // reports come and go every three minutes
				}
				return o.perMinute
			}
		}
		return 0
	}
	mon := reportsMonitor()
	total := 38 * 1440
	flaggedAt := make([]int, len(outages))
	transitions := make([][]State, len(outages))
	for i := range flaggedAt {
		flaggedAt[i] = -1
	}
	owner := func(m int) int {
		// An outage owns its minutes and the two hours after it, while the
		// 15-minute count drains and the app recovers.
		for i, o := range outages {
			if m >= o.first() && m < o.first()+o.length+120 {
				return i
			}
		}
		return -1
	}
	for m := range total {
		ts, v := s.next()
		st := mon.Observe(ts, []float64{v})
		if m < 2*1440 {
			continue // the first days are learning (cold start covered elsewhere)
		}
		o := owner(m)
		p := st.Points[0]
		if o < 0 {
			if p.Anomalous || st.State != Operational {
				t.Fatalf("%v (day %d): false alarm: state %s, value %.0f, norm %.1f, spread %.1f, score %.2f",
					ts, m/1440, st.State, v, p.Norm, p.Spread, p.Score)
			}
			continue
		}
		if p.Anomalous && flaggedAt[o] < 0 {
			flaggedAt[o] = m - outages[o].first()
		}
		if st.Changed {
			transitions[o] = append(transitions[o], st.State)
			t.Logf("%v: %s: %s", ts.Format("Mon 01-02 15:04"), st.State, st.Reason)
		}
	}
	for i, o := range outages {
		if flaggedAt[i] < 0 || flaggedAt[i] > 5 {
			t.Errorf("outage %d (%+v): flagged after %d minutes, want within 5", i, o, flaggedAt[i])
		}
		tr := transitions[i]
		ok := len(tr) >= 3 && tr[len(tr)-2] == Recovering && tr[len(tr)-1] == Operational
		for _, st := range tr[:max(0, len(tr)-2)] {
			ok = ok && (st == Degraded || st == Outage)
		}
		if !ok || len(tr) > 4 {
			t.Errorf("outage %d (%+v): transitions %v, want degraded/outage, recovering, operational once", i, o, tr)
		}
	}
	// Big outages are outages, not just degraded.
	for _, i := range []int{2, 3, 6} {
		if !contains(transitions[i], Outage) {
			t.Errorf("outage %d (%+v): transitions %v never reach outage", i, outages[i], transitions[i])
		}
	}
}

func contains(s []State, x State) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// Slow drifts (traffic growing 50% over two weeks, then falling by a third)
// and night-time noise (a few reports bunched together at night) are not
// outages: after the first two days, the app stays operational throughout.
func TestDriftsAndNightNoiseAreQuiet(t *testing.T) {
	s := newStream(2, 20)
	s.drift = func(day float64) float64 {
		switch {
		case day < 14:
			return 1
		case day < 28:
			return 1 + 0.5*(day-14)/14
		case day < 42:
			return 1.5 - 0.5*(day-28)/14
		}
		return 1
	}
	bursts := rand.New(rand.NewPCG(3, 3))
	burstAt := map[int]bool{}
	for d := range 49 {
		// Two night bursts a day, between 23:00 and 05:00.
		for range 2 {
			burstAt[d*1440+(23*60+bursts.IntN(6*60))%1440] = true
		}
	}
	s.extra = func(m int) float64 {
		if burstAt[m] || burstAt[m-1] {
			return 6 // a dozen reports within two minutes
		}
		return 0
	}
	mon := reportsMonitor()
	maxScore := 0.0
	for m := range 49 * 1440 {
		ts, v := s.next()
		st := mon.Observe(ts, []float64{v})
		if m < 2*1440 {
			continue // the first day's traffic is cold-start outage by API.md's rule
		}
		p := st.Points[0]
		maxScore = max(maxScore, p.Score)
		if st.State != Operational || p.Anomalous {
			t.Fatalf("%v (day %d): false alarm: state %s, value %.0f, norm %.1f, spread %.1f, score %.2f",
				ts, m/1440, st.State, v, p.Norm, p.Spread, p.Score)
		}
	}
	t.Logf("highest score in seven weeks: %.3f", maxScore)
}

// Cold start: on an app's first day, 50 distinct reporters within 15
// minutes make it outage at once (API.md: within two minutes), 49 do not,
// and a count hovering around 50 does not flap.
func TestColdStart(t *testing.T) {
	t0 := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	mon := reportsMonitor()
	minute := 0
	obs := func(v float64) Status {
		st := mon.Observe(t0.Add(time.Duration(minute)*time.Minute), []float64{v})
		minute++
		return st
	}
	for range 30 {
		if st := obs(3); st.State != Operational {
			t.Fatalf("quiet first minutes: %s", st.State)
		}
	}
	for _, v := range []float64{10, 25, 40, 49} {
		if st := obs(v); st.State == Outage {
			t.Fatalf("%v reporters: outage already", v)
		}
	}
	st := obs(50)
	if st.State != Outage || !st.Changed {
		t.Fatalf("50 reporters on the first day: state %s changed %v, want outage now", st.State, st.Changed)
	}
	if want := "50 people reported problems within 15 minutes"; st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}
	for _, v := range []float64{48, 52, 45, 55, 40, 51, 30} {
		if st := obs(v); st.State != Outage {
			t.Fatalf("hovering at %v: state %s, want outage held", v, st.State)
		}
	}
	var states []State
	for range 40 {
		if st := obs(2); st.Changed {
			states = append(states, st.State)
			if st.State == Recovering && st.Reason != "reports back to normal" {
				t.Errorf("recovering reason %q", st.Reason)
			}
		}
	}
	if len(states) != 2 || states[0] != Recovering || states[1] != Operational {
		t.Fatalf("after the burst: transitions %v, want recovering then operational", states)
	}
}

// Once the norm is learned, the cold-start rule no longer applies: 60
// reporters where 300 are usual at that hour is no outage.
func TestColdStartEndsWhenLearned(t *testing.T) {
	s := newStream(4, 20)
	mon := reportsMonitor()
	var ts time.Time
	var v float64
	for range 3 * 1440 {
		ts, v = s.next()
		mon.Observe(ts, []float64{v})
	}
	if !mon.Learned(ts) {
		t.Fatal("not learned after three days")
	}
	// Day 3 of the stream is a Thursday; 16:00 is the peak, ~300 reports.
	for s.minute%1440 != 16*60 {
		ts, v = s.next()
		mon.Observe(ts, []float64{v})
	}
	st := mon.Observe(ts.Add(time.Minute), []float64{60})
	if st.State == Outage {
		t.Fatalf("60 reporters against a norm of %.0f made an outage", st.Points[0].Norm)
	}
}

// Message volume falling to nothing is an outage too (a Both signal), and
// the reason says it fell below the norm.
func TestVolumeDrop(t *testing.T) {
	s := newStream(5, 200) // messages a minute, same shape as reports
	mon := NewMonitor(DefaultMonitorConfig(), []Signal{{Name: "message volume", Dir: Both}})
	var st Status
	reason := ""
	for m := range 15 * 1440 {
		ts, v := s.next()
		if m >= 14*1440+15*60 {
			v = 0 // the service stops at 15:00 on day 14
		}
		st = mon.Observe(ts, []float64{v})
		if st.Changed {
			reason = st.Reason
		}
		if m >= 2*1440 && m < 14*1440+15*60 && st.State != Operational {
			t.Fatalf("%v: %s before the drop: %s", ts, st.State, st.Reason)
		}
		if m == 14*1440+15*60+2 {
			break
		}
	}
	if st.State != Outage {
		t.Fatalf("volume at zero for 3 minutes: state %s, want outage", st.State)
	}
	if !strings.Contains(reason, "message volume fell") || !strings.Contains(reason, "below the norm") {
		t.Errorf("reason %q does not say the volume fell", reason)
	}
}

func TestCount(t *testing.T) {
	for v, want := range map[float64]string{
		2560: "2,560", 2559.6: "2,560", 12: "12", 1234567: "1,234,567", -1500: "-1,500", 0.5: "0.5", 3: "3",
	} {
		if got := count(v); got != want {
			t.Errorf("count(%v) = %q, want %q", v, got, want)
		}
	}
}
