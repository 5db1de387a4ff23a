package detector

import (
	"math"
	"time"
)

// offlineParams tunes the offline scorer of RunCSV. Six cheap detectors
// vote, the largest excess wins (1 is the threshold of each), and only the
// onset of an anomaly is flagged:
//   - the seasonal Series (a spike against the norm for the time of day and
//     week, gated by its Surprise);
//   - a likelihood of the Series' residual, as HTM's anomaly likelihood: a
//     burst of errors rare for this series, which catches a change of
//     pattern that no single row makes obvious;
//   - a two-sided CUSUM on values standardised by a slow mean and
//     deviation, which catches a small lasting level shift early;
//   - a record test: a value beyond the highest (lowest) the series has
//     ever taken, by a margin relative to its range;
//   - a sustained record: the same test on a short average of the values,
//     a new extreme that lasts rather than one wild row;
//   - novelty: a burst of shapes never seen before (the last few values,
//     quantised within the series' range, as one word of a fixed-size
//     table), a change of pattern that stays within the usual range.
//
// The first three are also judged against their own recent peak (see
// Echo) and open an onset only with a value beyond any this hour of the
// day has seen; the record test is also exempt from the refractory period.
// The values were chosen on the NAB corpus in ../shared/nab (see
// docs/outage-detector.md), the same for every file.
type offlineParams struct {
	Series Config

	// The likelihood judges a residual (in spreads) by how far its short
	// average (weight ShortAlpha) stands above its long-run mean, in
	// long-run standard deviations (weight LongAlpha); LikeZ of them is the
	// threshold.
	ShortAlpha, LongAlpha, LikeZ float64

	// The CUSUM standardises by a mean and mean absolute deviation of
	// weight CusumAlpha; CusumK is its slack and CusumH its threshold, both
	// in deviations. It starts accumulating after CusumWarmup rows, since
	// its slow mean needs more than one cycle of a seasonal series.
	CusumAlpha, CusumK, CusumH float64
	CusumWarmup                int

	// RecordMargin is the record test's threshold: how far beyond the
	// series' all-time maximum (minimum) a value must go, as a fraction of
	// the range between them.
	RecordMargin float64

	// SustainAlpha is the weight of a row in the short average the
	// sustained record watches; SustainMargin its margin, as RecordMargin.
	SustainAlpha, SustainMargin float64

	// Novelty quantises each value into NoveltyLevels levels of the range
	// seen so far and makes a word of the last NoveltyLength levels; a row
	// is novel when its word has never occurred. NoveltyAlpha is the weight
	// of a row in the short average of novel rows, NoveltyRate the share at
	// which it fires, and NoveltyEcho the share of its own recent peak
	// (EchoHalfLife) it must reach, as Echo.
	NoveltyLevels, NoveltyLength           int
	NoveltyAlpha, NoveltyRate, NoveltyEcho float64

	// Echo and EchoHalfLife: the seasonal, likelihood and CUSUM detectors
	// can open an onset only with an excess of at least Echo times the
	// largest they reached recently (that peak halves every EchoHalfLife
	// rows). Below that it is the tail of an episode already seen, or the
	// noise of a detector that was recently wildly off (a likelihood
	// dividing by the near-zero deviation of a flat series), not news.
	Echo         float64
	EchoHalfLife float64

	// Warmup is the number of rows learnt without any onset; Refractory the
	// least number of rows between two onsets, about the width of a NAB
	// window: an episode is paged once, a new one can be paged soon after.
	Warmup, Refractory int
}

func defaultOfflineParams() offlineParams {
	return offlineParams{
		Series:      OfflineConfig(),
		ShortAlpha:  0.2,
		LongAlpha:   0.002,
		LikeZ:       3,
		CusumAlpha:  0.005,
		CusumK:      1.2,
		CusumH:      25,
		CusumWarmup: 300,

		RecordMargin:  0.1,
		SustainAlpha:  0.2,
		SustainMargin: 0.05,

		NoveltyLevels: 6,
		NoveltyLength: 4,
		NoveltyAlpha:  0.1,
		NoveltyRate:   0.5,
		NoveltyEcho:   1,

		Echo:         0.3,
		EchoHalfLife: 288,

		Warmup:     150,
		Refractory: 115,
	}
}

// likelihood judges an error against the series' own history of errors: a
// burst of errors that is rare for this series is anomalous, however large
// errors are in absolute terms.
type likelihood struct {
	n, short, mean, vari float64
}

// observe returns the excess (1 at the threshold) of error r, then learns.
func (l *likelihood) observe(r float64, p *offlineParams) float64 {
	if l.n == 0 {
		l.short, l.mean = r, r
	}
	l.short += p.ShortAlpha * (r - l.short)
	sd := math.Sqrt(l.vari) + 1e-9*(1+math.Abs(l.mean))
	var e float64
	if l.n > 30 {
		e = max(0, (l.short-l.mean)/sd/p.LikeZ)
	}
	// Bounded learning, so a long anomaly does not become the norm at once.
	a := max(p.LongAlpha, 1/(l.n+1))
	d := min(r, l.mean+6*sd) - l.mean
	l.mean += a * d
	l.vari += a * (d*d - l.vari)
	l.n++
	return e
}

// cusum is a two-sided CUSUM on values standardised by slow averages.
type cusum struct {
	n, mean, dev, pos, neg float64
}

func (c *cusum) observe(v float64, p *offlineParams) float64 {
	if c.n == 0 {
		c.mean = v
	}
	// Mean absolute deviation to standard deviation, for a normal; clipped
	// so that one wild row cannot trip it alone (the Series sees spikes).
	z := (v - c.mean) / (1.2533*c.dev + 1e-9*(1+math.Abs(c.mean)))
	z = max(-10, min(10, z))
	if c.n < float64(p.CusumWarmup) {
		z = 0
	}
	c.pos = max(0, c.pos+z-p.CusumK)
	c.neg = max(0, c.neg-z-p.CusumK)
	e := max(c.pos, c.neg) / p.CusumH
	if e >= 1 {
		c.pos, c.neg = 0, 0 // a new episode starts from here
	}
	a := max(p.CusumAlpha, 1/(c.n+1))
	c.dev += a * (math.Abs(v-c.mean) - c.dev)
	c.mean += a * (v - c.mean)
	c.n++
	return e
}

// record flags values beyond the series' all-time range: the highest CPU,
// the lowest temperature the file has seen, by a margin that scales with
// the range so that a series creeping upwards is not a record every row.
type record struct {
	n, hi, lo float64
}

func (r *record) observe(v, margin float64) float64 {
	if r.n == 0 {
		r.hi, r.lo = v, v
	}
	r.n++
	w := margin*(r.hi-r.lo) + 1e-9*(1+math.Abs(r.hi))
	var e float64
	if v > r.hi {
		e, r.hi = (v-r.hi)/w, v
	} else if v < r.lo {
		e, r.lo = (r.lo-v)/w, v
	}
	return e
}

// novelty watches for words (the last few quantised values) never seen
// before. Each level takes a fixed number of bits of the word, so the
// table of words seen is a fixed-size bitset (6 levels, 4 long: 4096 bits).
type novelty struct {
	seen       []uint64
	bits       uint
	word, mask uint
	n          int
	short      float64 // short average of novel rows
	// lo, hi and scale = levels/(hi-lo), kept so that a row costs a
	// division only when the range has grown.
	lo, hi, scale float64
	perRate       float64 // 1/NoveltyRate
}

func newNovelty(p *offlineParams) novelty {
	bits := uint(1)
	for 1<<bits < p.NoveltyLevels {
		bits++
	}
	size := uint(1) << (bits * uint(p.NoveltyLength))
	return novelty{
		seen: make([]uint64, (size+63)/64), bits: bits, mask: size - 1,
		perRate: 1 / p.NoveltyRate,
	}
}

// observe quantises v within [lo, hi], the range seen before this row, and
// returns the excess of the short rate of novel words.
func (w *novelty) observe(v, lo, hi float64, p *offlineParams) float64 {
	if lo != w.lo || hi != w.hi {
		w.lo, w.hi, w.scale = lo, hi, 0
		if hi > lo {
			w.scale = float64(p.NoveltyLevels) / (hi - lo)
		}
	}
	q := max(0, min(p.NoveltyLevels-1, int((v-lo)*w.scale)))
	w.word = (w.word<<w.bits | uint(q)) & w.mask
	// Branch-free: whether a word is new is a coin toss on a noisy series.
	i, b := w.word/64, w.word%64
	novel := float64(w.seen[i]>>b&1 ^ 1)
	w.seen[i] |= 1 << b
	w.short += p.NoveltyAlpha * (novel - w.short)
	w.n++
	if w.n <= p.NoveltyLength+30 {
		return 0 // every word is new at first
	}
	return w.short * w.perRate
}

// offline is the per-file state of RunCSV: constant size, constant work
// per row.
type offline struct {
	p       offlineParams
	s       *Series
	like    likelihood
	cs      cusum
	rec     record
	sus     record  // the sustained record, on avg
	avg     float64 // short average of the values
	nov     novelty
	novPeak float64    // recent peak excess of nov
	peak    [3]float64 // recent peak excess of the Series, likelihood and CUSUM
	decay   float64    // per-row decay of peak
	// The highest and lowest value seen at each hour of the day (valid once
	// hourSeen).
	hourHi, hourLo [24]float64
	hourSeen       [24]bool
	n              int
	since          int // rows since the last onset
}

func newOffline(p offlineParams) *offline {
	return &offline{
		p: p, s: NewSeries(p.Series, Both), since: p.Refractory,
		decay: math.Exp2(-1 / p.EchoHalfLife),
		nov:   newNovelty(&p),
	}
}

// maxExcess bounds an excess so that the score stays a number: a deviation
// divided by a spread of almost zero can overflow to +Inf, and Inf/(1+Inf)
// is NaN.
const maxExcess = 1e12

// observe returns the row's anomaly_score: at least 0.5 only at the onset
// of an anomaly, below 0.5 elsewhere.
func (o *offline) observe(t time.Time, v float64) float64 {
	p := &o.p
	pt := o.s.Observe(t, v)
	ex := [3]float64{
		pt.Score / (1 - pt.Score), // Score = excess/(1+excess) < 1
		o.like.observe(math.Abs(v-pt.Norm)/pt.Spread, p),
		o.cs.observe(v, p),
	}
	nov := min(o.nov.observe(v, o.rec.lo, o.rec.hi, p), maxExcess)
	rec := min(o.rec.observe(v, p.RecordMargin), maxExcess)
	if o.n == 0 {
		o.avg = v
	}
	o.avg += p.SustainAlpha * (v - o.avg)
	sus := min(o.sus.observe(o.avg, p.SustainMargin), maxExcess)
	e, fresh := max(rec, sus, nov), sus >= 1 || nov >= 1 && nov >= p.NoveltyEcho*o.novPeak
	o.novPeak = max(o.novPeak*o.decay, nov)
	// A spike the series makes at this hour every day (a nightly job) is
	// routine however surprising it looks to the three detectors that
	// follow: they open an onset only beyond the range of this hour.
	h := t.Hour()
	beyond := !o.hourSeen[h] || v > o.hourHi[h] || v < o.hourLo[h]
	if !o.hourSeen[h] {
		o.hourSeen[h], o.hourHi[h], o.hourLo[h] = true, v, v
	}
	o.hourHi[h], o.hourLo[h] = max(o.hourHi[h], v), min(o.hourLo[h], v)
	for k, x := range ex {
		if !(x >= 0) { // NaN
			x = 0
		}
		x = min(x, maxExcess)
		e = max(e, x)
		if beyond && x >= 1 && x >= p.Echo*o.peak[k] {
			fresh = true
		}
		o.peak[k] = max(o.peak[k]*o.decay, x)
	}
	o.n++
	o.since++
	score := e / (1 + e)
	// A record is news whenever it comes: it cannot repeat often (each
	// must beat the last by a tenth of the range), and it is often the
	// peak of an episode another detector opened a little early.
	if o.n > p.Warmup && (rec >= 1 || fresh && o.since >= p.Refractory) {
		o.since = 0
		return score
	}
	return min(score, 0.49)
}
