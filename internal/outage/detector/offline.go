package detector

import (
	"math"
	"time"
)

// offlineParams tunes the offline scorer of RunCSV: the seasonal Series plus
// cheap change detectors whose raw errors are judged against each series'
// own history of errors.
type offlineParams struct {
	Series Config // the seasonal norm (spikes against the time of day/week)

	// Likelihood: a raw error is judged by how far its short average
	// (weight ShortAlpha) stands above its long-run mean, in long-run
	// standard deviations (weight LongAlpha); LikeZ of them is the threshold.
	ShortAlpha, LongAlpha, LikeZ float64
	// LikeFloor bounds the long-run standard deviation of an error below,
	// so a series that a model predicts perfectly is not flagged for the
	// rounding noise of its errors.
	LikeFloor float64
	// RecordK, when positive, judges instead by records: the short average's
	// excess over the mean must be RecordK times the largest excess seen
	// lately, that maximum decaying by RecordDecay a row.
	RecordK, RecordDecay float64
	// LevelAlpha and LevelDevAlpha are the weights of the non-seasonal
	// level and its mean absolute deviation (one-step prediction error).
	LevelAlpha, LevelDevAlpha float64
	// Use switches components on (bit 0 seasonal spike, 1 seasonal error
	// likelihood, 2 one-step error likelihood).
	Use int
	// CUSUM (component bit 3): a two-sided cumulative sum of values
	// standardised by a slow mean and deviation (weight CusumAlpha), with
	// slack CusumK and threshold CusumH, both in deviations.
	CusumAlpha, CusumK, CusumH float64
	// CusumWarmup is the number of rows before the CUSUM accumulates: its
	// slow mean needs more than one cycle of a seasonal series.
	CusumWarmup int
	// Warmup is the number of rows that are learnt without any onset.
	Warmup int
	// Refractory is the least number of rows between two onsets.
	Refractory int
}

func defaultOfflineParams() offlineParams {
	return offlineParams{
		Series:        OfflineConfig(),
		ShortAlpha:    0.2,
		LongAlpha:     0.002,
		LikeZ:         3,
		LikeFloor:     0,
		LevelAlpha:    0.5,
		LevelDevAlpha: 0.01,
		Use:           11,
		CusumAlpha:    0.005,
		CusumK:        1,
		CusumH:        30,
		CusumWarmup:   300,
		Warmup:        150,
		Refractory:    100,
	}
}

// likelihood judges a raw error against the series' own history of errors,
// as HTM's anomaly likelihood does: a burst of errors that is rare for this
// series is anomalous, however large errors are in absolute terms.
type likelihood struct {
	n                 float64
	short, mean, vari float64
	rec               float64
}

// observe returns the excess (1 at the threshold) of error r, then learns.
func (l *likelihood) observe(r float64, p *offlineParams) float64 {
	shortA, longA, z, floor := p.ShortAlpha, p.LongAlpha, p.LikeZ, p.LikeFloor
	if l.n == 0 {
		l.short, l.mean = r, r
	}
	l.short += shortA * (r - l.short)
	var e float64
	sd := max(math.Sqrt(l.vari), floor) + 1e-9*(1+math.Abs(l.mean))
	x := l.short - l.mean
	if p.RecordK > 0 {
		if l.n > 30 {
			e = max(0, x/(p.RecordK*(l.rec+floor)+1e-12))
		}
		l.rec = max(l.rec*p.RecordDecay, x)
	} else if l.n > 30 {
		e = max(0, x/sd/z)
	}
	// Learn the mean from the raw error, bounded so a long anomaly does not
	// become the norm at once.
	a := max(longA, 1/(l.n+1))
	d := min(r, l.mean+6*sd) - l.mean
	l.mean += a * d
	l.vari += a * (d*d - l.vari)
	l.n++
	return e
}

// offline is the per-file state of RunCSV.
type offline struct {
	p          offlineParams
	s          *Series
	n          int
	since      int
	level      float64
	lvlDev     float64
	seasL      likelihood
	stepL      likelihood
	started    bool
	cm, cd     float64 // CUSUM's slow mean and mean absolute deviation
	cpos, cneg float64
}

func newOffline(p offlineParams) *offline {
	return &offline{p: p, s: NewSeries(p.Series, Both), since: p.Refractory}
}

// observe returns the row's anomaly_score: at least 0.5 only at the onset
// of an anomaly.
func (o *offline) observe(t time.Time, v float64) float64 {
	p := &o.p
	pt := o.s.Observe(t, v)
	var e float64
	if p.Use&1 != 0 && pt.Score < 1 {
		e = max(e, pt.Score/(1-pt.Score))
	}
	if p.Use&2 != 0 {
		r := math.Abs(v-pt.Norm) / pt.Spread
		e = max(e, o.seasL.observe(r, p))
	}
	if !o.started {
		o.level, o.started = v, true
	}
	if p.Use&4 != 0 {
		r := math.Abs(v-o.level) / (o.lvlDev + 1e-9*(1+math.Abs(o.level)))
		if o.n < 2 {
			r = 0
		}
		e = max(e, o.stepL.observe(r, p))
	}
	if p.Use&8 != 0 {
		if o.n == 0 {
			o.cm = v
		}
		z := (v - o.cm) / (1.2533*o.cd + 1e-9*(1+math.Abs(o.cm)))
		if p.Use&16 != 0 {
			// On the seasonal residual instead.
			z = (v - pt.Norm - o.cm) / (1.2533*o.cd + 1e-9*(1+math.Abs(pt.Norm)))
		}
		if o.n < p.CusumWarmup {
			z = 0
		}
		z = max(-10, min(10, z))
		o.cpos = max(0, o.cpos+z-p.CusumK)
		o.cneg = max(0, o.cneg-z-p.CusumK)
		c := max(o.cpos, o.cneg) / p.CusumH
		if c >= 1 {
			o.cpos, o.cneg = 0, 0
		}
		e = max(e, c)
		a := max(p.CusumAlpha, 1/float64(o.n+1))
		x := v
		if p.Use&16 != 0 {
			x = v - pt.Norm
		}
		o.cd += a * (math.Abs(x-o.cm) - o.cd)
		o.cm += a * (x - o.cm)
	}
	o.lvlDev += max(p.LevelDevAlpha, 1/float64(o.n+1)) * (math.Abs(v-o.level) - o.lvlDev)
	o.level += p.LevelAlpha * (v - o.level)
	o.n++
	o.since++
	score := e / (1 + e)
	if e >= 1 && o.n > p.Warmup && o.since >= p.Refractory {
		o.since = 0
		return score
	}
	return min(score, 0.49)
}
