package detector

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// State is an app's state on the status page.
type State string

// The states of an app, as in API.md.
const (
	Operational State = "operational"
	Degraded    State = "degraded"
	Outage      State = "outage"
	Recovering  State = "recovering"
)

// Signal describes one series that a Monitor watches for an app.
type Signal struct {
	// Name appears in reasons: "reports", "failed sends", "send latency".
	Name string
	// Dir is the direction that counts: Up for reports, failures and
	// latency; Both for message volume.
	Dir Direction
	// Config tunes the signal's Series; zero fields take DefaultConfig's.
	Config Config
	// Reporters marks the count of distinct problem reporters in the last
	// 15 minutes, the signal that the cold-start rule watches.
	Reporters bool
}

// MonitorConfig tunes a Monitor. Zero fields take DefaultMonitorConfig's.
type MonitorConfig struct {
	// Learn is how long the monitor watches an app before it trusts the
	// norms it learned. Until then only the cold-start rule can declare an
	// outage. Default 24h.
	Learn time.Duration
	// ColdStartReporters is the number of distinct reporters within 15
	// minutes that means outage while the norm is still being learned.
	// Default 50 (API.md).
	ColdStartReporters float64
	// OutageScore is the score of an alerting signal above which the app is
	// in outage rather than degraded. 0.8 is four times the threshold.
	// Default 0.8.
	OutageScore float64
	// Recover is how long every signal must stay quiet before a recovering
	// app is operational again. Default 15m.
	Recover time.Duration
}

// DefaultMonitorConfig is the fixed default.
func DefaultMonitorConfig() MonitorConfig {
	return MonitorConfig{
		Learn:              24 * time.Hour,
		ColdStartReporters: 50,
		OutageScore:        0.8,
		Recover:            15 * time.Minute,
	}
}

// WithDefaults returns c with its zero fields set from DefaultMonitorConfig.
func (c MonitorConfig) WithDefaults() MonitorConfig {
	d := DefaultMonitorConfig()
	if c.Learn <= 0 {
		c.Learn = d.Learn
	}
	if c.ColdStartReporters <= 0 {
		c.ColdStartReporters = d.ColdStartReporters
	}
	if c.OutageScore <= 0 {
		c.OutageScore = d.OutageScore
	}
	if c.Recover <= 0 {
		c.Recover = d.Recover
	}
	return c
}

// Status is the app's state after an observation.
type Status struct {
	State State
	// Changed is true when this observation changed State; Reason then says
	// why, in words fit for an incident timeline.
	Changed bool
	Reason  string
	// Points are the signals' points, in the order of the signals (the zero
	// Point for a signal that was not observed).
	Points []Point
}

// Monitor combines the signals of one app into its state, with hysteresis:
// an app enters degraded or outage on the first anomalous observation, stays
// there while any signal's alert is on, and goes through recovering, where
// it must stay quiet for Recover, before it is operational again. Not safe
// for concurrent use.
type Monitor struct {
	cfg     MonitorConfig
	signals []Signal
	series  []*Series
	points  []Point
	state   State
	first   time.Time
	started bool
	quiet   time.Time // when the signals last went quiet
	cause   string    // the signal that started the current episode
	cold    bool      // the cold-start rule is on
}

// NewMonitor returns a Monitor of the given signals, operational.
func NewMonitor(cfg MonitorConfig, signals []Signal) *Monitor {
	m := &Monitor{
		cfg:     cfg.WithDefaults(),
		signals: append([]Signal(nil), signals...),
		series:  make([]*Series, len(signals)),
		points:  make([]Point, len(signals)),
		state:   Operational,
	}
	for i, s := range signals {
		m.series[i] = NewSeries(s.Config, s.Dir)
	}
	return m
}

// State is the current state.
func (m *Monitor) State() State { return m.state }

// Learned reports whether the monitor has watched long enough, at time t,
// to trust its norms.
func (m *Monitor) Learned(t time.Time) bool {
	return m.started && t.Sub(m.first) >= m.cfg.Learn
}

// Observe feeds one observation per signal, in the order of the signals,
// taken at time t; NaN means the signal was not observed this time. Call it
// at least every minute or so: state changes happen on observations.
func (m *Monitor) Observe(t time.Time, values []float64) Status {
	if !m.started {
		m.first, m.started = t, true
	}
	learned := m.Learned(t)
	level := Operational // the worst level any signal asks for now
	alerting := false    // any signal's alert (hysteresis) is on
	reason, cause := "", ""
	worst := -1.0
	for i := range m.signals {
		m.points[i] = Point{}
		if i >= len(values) || math.IsNaN(values[i]) {
			continue
		}
		p := m.series[i].Observe(t, values[i])
		m.points[i] = p
		sig := &m.signals[i]
		// Cold start, with hysteresis: on at ColdStartReporters, off below
		// half of it, so a count hovering at 50 does not flap.
		if sig.Reporters && !learned {
			if p.Value >= m.cfg.ColdStartReporters {
				m.cold = true
			} else if p.Value < m.cfg.ColdStartReporters/2 {
				m.cold = false
			}
		} else if sig.Reporters {
			m.cold = false
		}
		if sig.Reporters && m.cold {
			level = Outage
			alerting = true
			if worst < math.Inf(1) {
				worst = math.Inf(1)
				reason = fmt.Sprintf("%s people reported problems within 15 minutes", count(p.Value))
				cause = sig.Name
			}
			continue
		}
		if !p.Alert {
			continue
		}
		alerting = true
		if !p.Anomalous {
			continue
		}
		l := Degraded
		if learned && p.Score >= m.cfg.OutageScore {
			l = Outage
		}
		if rank(l) > rank(level) {
			level = l
		}
		if p.Score > worst {
			worst = p.Score
			reason, cause = deviation(sig.Name, p), sig.Name
		}
	}

	prev := m.state
	next := prev
	switch {
	case rank(level) > rank(prev) || (prev == Recovering && level != Operational):
		next = level
		m.cause = cause
	case prev == Degraded || prev == Outage:
		if !alerting {
			next, m.quiet = Recovering, t
			reason = m.cause + " back to normal"
		}
	case prev == Recovering:
		if alerting {
			m.quiet = t
		} else if t.Sub(m.quiet) >= m.cfg.Recover {
			next = Operational
			reason = "all signals normal for " + m.cfg.Recover.String()
		}
	}
	m.state = next
	st := Status{State: next, Changed: next != prev, Points: m.points}
	if st.Changed {
		st.Reason = reason
	}
	return st
}

func rank(s State) int {
	switch s {
	case Degraded:
		return 1
	case Outage:
		return 2
	}
	return 0
}

// deviation words a point: "reports reached 2,560 above the norm".
func deviation(name string, p Point) string {
	d := p.Value - p.Norm
	if d >= 0 {
		return fmt.Sprintf("%s reached %s above the norm", name, count(d))
	}
	return fmt.Sprintf("%s fell %s below the norm", name, count(-d))
}

// count formats a value as a whole number with thousands separators when it
// is one, else with two significant decimals.
func count(v float64) string {
	if math.Abs(v) >= 10 || v == math.Trunc(v) {
		s := strconv.FormatInt(int64(math.Round(v)), 10)
		neg := s[0] == '-'
		if neg {
			s = s[1:]
		}
		out := make([]byte, 0, len(s)+len(s)/3+1)
		if neg {
			out = append(out, '-')
		}
		for i := range len(s) {
			if i > 0 && (len(s)-i)%3 == 0 {
				out = append(out, ',')
			}
			out = append(out, s[i])
		}
		return string(out)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
