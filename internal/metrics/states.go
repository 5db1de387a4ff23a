package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// AppStates are the outage monitor's states (API.md, GET /v1/status).
var AppStates = []string{"operational", "degraded", "outage", "recovering"}

var stateDesc = prometheus.NewDesc("switchboard_app_state",
	"The outage monitor's state of each app: 1 for the current state, 0 for the others.",
	[]string{"app", "state"}, nil)

// WatchStates makes every scrape export switchboard_app_state{app,state}
// from f, which returns each app's current state (one of AppStates). The
// status service calls it when the server wires it; until then the metric
// is absent. f must be cheap and safe to call from any goroutine.
func (m *Metrics) WatchStates(f func() map[string]string) {
	m.statesMu.Lock()
	m.states = f
	m.statesMu.Unlock()
}

// stateCollector reads the states at scrape time, so that a state change
// costs the monitor nothing.
type stateCollector struct{ m *Metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- stateDesc }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.statesMu.Lock()
	f := c.m.states
	c.m.statesMu.Unlock()
	if f == nil {
		return
	}
	states := f()
	apps := make([]string, 0, len(states))
	for a := range states {
		apps = append(apps, a)
	}
	sort.Strings(apps)
	for _, a := range apps {
		for _, s := range AppStates {
			v := 0.0
			if states[a] == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, a, s)
		}
	}
}
