// Package detector learns the normal level of a time series for each time of
// day and week and flags values well outside it, the way Downdetector flags
// an outage when problem reports rise far above the norm for the hour.
//
// Everything here is pure and deterministic: no I/O, no clocks (timestamps
// are inputs), one pass, constant memory and constant time per observation.
// A Series is not safe for concurrent use; give each goroutine its own or
// guard it.
//
// The model of one series is a hierarchy of exponentially weighted averages
// of level and spread: a global one, one per hour of the day and one per hour
// of the week. A bucket's estimate is blended with its parent's in
// proportion to how many observations it has seen, so a young bucket leans
// on the day profile and the global level, a mature one stands on its own.
// An observation is anomalous when it is at least Config.Threshold spreads
// from the norm and also beyond the relative and absolute margins, so that
// five reports at night where two are usual page nobody.
package detector

import (
	"math"
	"time"
)

// Direction says which deviations from the norm count.
type Direction uint8

const (
	// Up flags values above the norm (problem reports, failures, latency).
	Up Direction = 1 << iota
	// Down flags values below the norm.
	Down
	// Both flags either way (message volume: an outage can look like
	// traffic falling to nothing).
	Both = Up | Down
)

// Config tunes a Series. The zero value of a field means its default in
// DefaultConfig; use DefaultConfig or OfflineConfig rather than a literal.
type Config struct {
	// Bucket is the width of a seasonal bucket. The day and week are cut
	// into buckets of this width (24 and 168 for an hour). Default 1h.
	Bucket time.Duration
	// Alpha is how far one visit (Bucket's worth of observations) moves a
	// seasonal bucket's averages. Default 0.1.
	Alpha float64
	// GlobalAlpha is how far Bucket's worth of observations moves the
	// global average, which stands in for buckets that have not learned
	// yet. Default 0.02.
	GlobalAlpha float64
	// Mature is the number of visits after which a bucket's own estimate
	// gets half the weight against its parent's. Default 1.
	Mature float64
	// Threshold is the deviation from the norm, in spreads, at which the
	// score reaches 0.5 and the observation is anomalous. Default 4.
	Threshold float64
	// MinRatio is the relative margin: an anomalous value differs from the
	// norm by at least MinRatio times the norm. Default 0.5 (50% above).
	// Negative means no relative margin.
	MinRatio float64
	// MinAbs is the absolute margin, in the series' units: an anomalous
	// value differs from the norm by at least MinAbs. Default 30 (reports).
	// Negative means no absolute margin.
	MinAbs float64
	// Release is the score under which an alert counts as quiet; an alert
	// ends after ReleasePoints quiet observations in a row. Defaults 0.3
	// and 10.
	Release       float64
	ReleasePoints int
	// Clip bounds, in spreads, how far a single observation can move the
	// learned level and spread, so one spike does not teach the norm that
	// spikes are normal. Default 3.
	Clip float64
	// AlertLearn scales the learning rates while an alert is on, so that an
	// outage is not learned as the new normal within minutes; a lasting
	// change is still absorbed, slowly. Default 0.1.
	AlertLearn float64
	// Surprise, when positive, also requires the deviation (in spreads) to
	// be Surprise standard deviations above the series' own long-run mean
	// deviation; SurpriseAlpha is the weight of one observation in that
	// mean. Defaults 0 (off) and 0.001.
	Surprise, SurpriseAlpha float64
	// SpreadFloor bounds a bucket's spread below, as a fraction of the
	// series' overall spread. Default 0.1.
	SpreadFloor float64
	// Refractory, when positive, is the least number of observations
	// between two onsets, and an alert still on after it has a new onset at
	// its next anomalous observation: one page per episode-sized stretch,
	// whether the alert flickers or lasts. Default 0: an onset at the start
	// of each alert.
	Refractory int
}

// DefaultConfig is the configuration for counts of problem reports and
// similar server signals sampled every minute or so.
func DefaultConfig() Config {
	return Config{
		Bucket:        time.Hour,
		Alpha:         0.1,
		GlobalAlpha:   0.02,
		Mature:        1,
		Threshold:     4,
		MinRatio:      0.5,
		MinAbs:        30,
		Release:       0.3,
		Refractory:    0,
		SpreadFloor:   0.1,
		ReleasePoints: 10,
		Clip:          3,
		AlertLearn:    0.1,
	}
}

// OfflineConfig is the one fixed configuration of the offline mode (RunCSV)
// for series of unknown units, scale and sampling: no absolute or relative
// margin, since a margin in reports means nothing for CPU percentages or
// temperatures; faster learning, since a file may hold only two weeks; a
// deviation must also be rare for the series itself (Surprise), since many
// machine metrics are spiky by nature; and at most one onset every 200
// observations, since an operator paged about a machine does not need
// paging again about the same episode.
func OfflineConfig() Config {
	c := DefaultConfig()
	c.MinAbs = -1
	c.MinRatio = -1
	c.Threshold = 4
	c.Surprise = 5
	c.SpreadFloor = 0.3
	c.Alpha = 0.3
	c.GlobalAlpha = 0.5
	c.AlertLearn = 1
	c.Refractory = 200
	return c
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Bucket <= 0 {
		c.Bucket = d.Bucket
	}
	if c.Alpha <= 0 {
		c.Alpha = d.Alpha
	}
	if c.GlobalAlpha <= 0 {
		c.GlobalAlpha = d.GlobalAlpha
	}
	if c.Mature <= 0 {
		c.Mature = d.Mature
	}
	if c.Threshold <= 0 {
		c.Threshold = d.Threshold
	}
	if c.MinRatio == 0 {
		c.MinRatio = d.MinRatio
	}
	if c.MinAbs == 0 {
		c.MinAbs = d.MinAbs
	}
	if c.Release <= 0 {
		c.Release = d.Release
	}
	if c.ReleasePoints <= 0 {
		c.ReleasePoints = d.ReleasePoints
	}
	if c.Clip <= 0 {
		c.Clip = d.Clip
	}
	if c.SurpriseAlpha <= 0 {
		c.SurpriseAlpha = 0.001
	}
	if c.SpreadFloor <= 0 {
		c.SpreadFloor = d.SpreadFloor
	}
	if c.AlertLearn <= 0 {
		c.AlertLearn = d.AlertLearn
	}
	return c
}

// Point is what a Series makes of one observation.
type Point struct {
	Time  time.Time
	Value float64
	// Norm and Spread are what the series expected before seeing Value.
	Norm, Spread float64
	// Score grows with the deviation in the flagged direction(s): 0 at the
	// norm, 0.5 at the threshold (all margins met), towards 1 beyond.
	Score float64
	// Anomalous is Score >= 0.5: this observation alone is outside the norm.
	Anomalous bool
	// Alert is the hysteresis state after this observation: on from the
	// first anomalous observation until ReleasePoints quiet ones in a row.
	Alert bool
	// Onset is true on the observation that turned the alert on.
	Onset bool
	// Above says the deviation is upwards (false: downwards).
	Above bool
}

// stat is an exponentially weighted level and mean absolute deviation.
type stat struct {
	n, level, dev float64
}

// Series learns one series and scores its observations.
type Series struct {
	cfg    Config
	dir    Direction
	global stat
	day    []stat
	week   []stat
	n      int
	alert  bool
	quiet  int
	since  int // observations since the last onset
	last   time.Time

	zn, zmean, zvar float64 // long-run deviations, in spreads
}

// NewSeries returns a series that flags deviations in direction dir.
func NewSeries(cfg Config, dir Direction) *Series {
	cfg = cfg.withDefaults()
	perDay := int((24 * time.Hour) / cfg.Bucket)
	if perDay < 1 {
		perDay = 1
	}
	return &Series{
		cfg:  cfg,
		dir:  dir,
		day:  make([]stat, perDay),
		week: make([]stat, 7*perDay),
	}
}

// Observations is the number of observations seen.
func (s *Series) Observations() int { return s.n }

// position returns the two week buckets whose centres surround t and how
// far t is from the first towards the second (0 to 1). The norm between two
// centres is interpolated, so a smooth daily curve is not a staircase.
func (s *Series) position(t time.Time) (k0, k1 int, f float64) {
	secs := int64(t.Weekday())*86400 + int64(t.Hour())*3600 + int64(t.Minute())*60 + int64(t.Second())
	x := float64(time.Duration(secs)*time.Second)/float64(s.cfg.Bucket) - 0.5
	fl := math.Floor(x)
	n := len(s.week)
	k0 = ((int(fl) % n) + n) % n
	return k0, (k0 + 1) % n, x - fl
}

func blend(child, parent stat, mature float64) stat {
	w := child.n / (child.n + mature)
	return stat{level: w*child.level + (1-w)*parent.level, dev: w*child.dev + (1-w)*parent.dev}
}

// expect is the blended estimate of week bucket k, and of its day bucket.
func (s *Series) expect(k int) (week, day stat) {
	day = blend(s.day[k%len(s.day)], s.global, s.cfg.Mature)
	return blend(s.week[k], day, s.cfg.Mature), day
}

// Observe scores v at time t against the norm learned so far, then learns
// from it. Timestamps should not go backwards; if they do, the observation
// is scored and learns nothing.
func (s *Series) Observe(t time.Time, v float64) Point {
	c := &s.cfg
	k0, k1, f := s.position(t)
	p := Point{Time: t, Value: v}

	if s.n == 0 {
		s.global.level = v
	}
	e0, d0 := s.expect(k0)
	e1, d1 := s.expect(k1)
	norm := (1-f)*e0.level + f*e1.level
	// Mean absolute deviation to standard deviation, for a normal.
	spread := 1.2533 * ((1-f)*e0.dev + f*e1.dev)
	// A spread of zero (a flat line, a bucket that saw one value) would make
	// any wobble infinite: bound it below by a fraction of the series'
	// overall spread.
	floor := 1e-9 + 1e-3*math.Abs(norm) + c.SpreadFloor*1.2533*s.global.dev
	if spread < floor {
		spread = floor
	}
	p.Norm, p.Spread = norm, spread

	dev := v - norm
	p.Above = dev >= 0
	var excess float64
	if (p.Above && s.dir&Up != 0) || (!p.Above && s.dir&Down != 0) {
		a := math.Abs(dev)
		excess = a / (c.Threshold * spread)
		if c.MinAbs > 0 {
			excess = min(excess, a/c.MinAbs)
		}
		if c.MinRatio > 0 {
			// The ratio is symmetric: twice the norm is as far above it as
			// half the norm is below it, and zero is infinitely below.
			lo, hi := math.Abs(v), math.Abs(norm)
			if p.Above {
				lo, hi = hi, lo
			}
			excess = min(excess, (hi/lo-1)/c.MinRatio)
		}
	}
	// Surprise: is this deviation rare for this series? Compare it with the
	// long-run mean and spread of the series' own deviations, so a series
	// that always jumps around needs a bigger jump than a calm one.
	if c.Surprise > 0 {
		z := math.Abs(dev) / spread
		if s.zn > 30 {
			q := (z - s.zmean) / (math.Sqrt(s.zvar) + 1e-9)
			excess = max(0, min(excess, q/c.Surprise))
		}
		a := max(c.SurpriseAlpha, 1/(s.zn+1))
		d := min(z, s.zmean+10*math.Sqrt(s.zvar)+1) - s.zmean
		s.zmean += a * d
		s.zvar += a * (d*d - s.zvar)
		s.zn++
	}
	// Too early to know what normal is: stay quiet until the series has
	// seen a bucket's worth of time and a few observations.
	if s.global.n < 1 || s.n < 10 {
		excess = 0
	}
	p.Score = excess / (1 + excess)
	p.Anomalous = p.Score >= 0.5

	// With a refractory period, a long alert pages again once it is over;
	// without, only the start of an alert does.
	if p.Anomalous && s.since >= c.Refractory && (!s.alert || c.Refractory > 0) {
		p.Onset, s.since = true, 0
	}
	switch {
	case p.Anomalous && !s.alert:
		s.alert, s.quiet = true, 0
	case s.alert && p.Score < c.Release:
		s.quiet++
		if s.quiet >= c.ReleasePoints {
			s.alert = false
		}
	case s.alert:
		s.quiet = 0
	}
	p.Alert = s.alert

	w := 0.0
	if s.n > 0 {
		w = min(1, max(0, float64(t.Sub(s.last))/float64(c.Bucket)))
	}
	s.learn(k0, v, w*(1-f), spread, d0.dev)
	s.learn(k1, v, w*f, spread, d1.dev)
	s.learnGlobal(v, w, spread)
	s.last = t
	s.n++
	s.since++
	return p
}

// learn folds v into week bucket k and its day bucket with weight w. An
// observation weighs dt/Bucket (at most 1), shared between the two buckets
// it falls between, so a bucket moves by about Alpha per visit whatever the
// sampling interval; n counts visits. Early on each average is a plain
// running mean, then an EWMA.
func (s *Series) learn(k int, v, w, spread, dayDev float64) {
	c := &s.cfg
	s.update(&s.day[k%len(s.day)], v, w, c.Alpha, spread, s.global.dev)
	s.update(&s.week[k], v, w, c.Alpha, spread, dayDev)
}

func (s *Series) learnGlobal(v, w, spread float64) {
	s.update(&s.global, v, w, s.cfg.GlobalAlpha, spread, 0)
}

func (s *Series) update(st *stat, v, w, alpha, spread, initDev float64) {
	c := &s.cfg
	if w <= 0 {
		return
	}
	if st.n == 0 {
		// A new bucket starts at the value with its parent's spread: one
		// observation says nothing about spread.
		st.level, st.dev, st.n = v, initDev, w
		return
	}
	// During an alert, learn slowly, but only what has a norm to defend: a
	// young bucket learning at full speed is how the alerts of a series
	// that is still learning end.
	if s.alert && st.n >= 2 {
		w *= c.AlertLearn
	}
	lim := c.Clip * spread
	r := max(-lim, min(lim, v-st.level))
	st.n += w
	a := max(alpha*w, w/st.n)
	st.level += a * r
	st.dev += a * (math.Abs(r) - st.dev)
}
