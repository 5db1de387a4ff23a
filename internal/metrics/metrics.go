// Package metrics exposes a node's numbers to Prometheus: sends per app,
// their errors and latency, store and bus latency, live connections,
// delivery lag, queue depths and each app's outage state.
//
// Everything is registered on the Metrics' own prometheus.Registry, never
// the global default one, so that two nodes in one test process do not
// share counters. The store and the bus are measured by decorators (Store,
// Bus) that wrap whatever backend was chosen, so no backend knows about
// metrics. The send path costs a sync.Map lookup and a few atomic adds: the
// per-app children of each vector are resolved once and cached.
package metrics

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
)

// latencyBuckets suit an fsync'd write path: from a fraction of a
// millisecond (a shared group commit) to seconds (a stalled disk).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// lagBuckets reach further: a lagging session is measured in seconds.
var lagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics holds a node's collectors. Create it with New; it is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	sent        *prometheus.CounterVec
	sendErrors  *prometheus.CounterVec
	sendSeconds *prometheus.HistogramVec
	lag         *prometheus.HistogramVec

	storeSeconds *prometheus.HistogramVec
	storeErrors  *prometheus.CounterVec

	busSeconds prometheus.Histogram
	busErrors  prometheus.Counter

	apps sync.Map // app id -> *appMetrics

	statesMu sync.Mutex // guards states
	states   func() map[string]string
}

// appMetrics are one app's children of the per-app vectors, resolved once.
type appMetrics struct {
	sent   prometheus.Counter
	send   prometheus.Observer
	lag    prometheus.Observer
	errors sync.Map // code -> prometheus.Counter
}

var _ messaging.Observer = (*Metrics)(nil)

// New returns Metrics with every collector registered, the Go runtime's and
// the process's included.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_messages_sent_total",
		Help: "Messages stored, by the sender's app (a repeated client id is not counted again).",
	}, []string{"app"})
	m.sendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_send_errors_total",
		Help: "Sends that failed, by the sender's app and the API error code.",
	}, []string{"app", "code"})
	m.sendSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchboard_send_duration_seconds",
		Help:    "Time to handle a send (validation, authorisation, durable store, publish), by the sender's app.",
		Buckets: latencyBuckets,
	}, []string{"app"})
	m.lag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "switchboard_delivery_lag_seconds",
		Help: "From a message's sent_at to its hand-off to a live session on this node, by the recipient's app. " +
			"Across nodes it includes their clock difference.",
		Buckets: lagBuckets,
	}, []string{"app"})
	m.storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchboard_store_duration_seconds",
		Help:    "Time of each store call, by operation; writes include their durable commit.",
		Buckets: latencyBuckets,
	}, []string{"op"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_store_errors_total",
		Help: "Store calls that failed for a reason other than not found or conflict, by operation.",
	}, []string{"op"})
	m.busSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "switchboard_bus_publish_duration_seconds",
		Help:    "Time to hand one batch of updates to the bus.",
		Buckets: latencyBuckets,
	})
	m.busErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_bus_publish_errors_total",
		Help: "Bus publishes that failed (sessions backfill from the store).",
	})
	m.reg.MustRegister(m.sent, m.sendErrors, m.sendSeconds, m.lag, m.storeSeconds, m.storeErrors, m.busSeconds, m.busErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		stateCollector{m})
	return m
}

// Registry returns the registry, for tests and for collectors of other
// packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when the scraper asks for it). Errors of a collector are logged to log.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Gauge registers a gauge whose value f reports at each scrape, for numbers
// another component already keeps (live connections, queue lengths). f must
// be cheap and safe to call from any goroutine.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// CounterFunc registers a counter whose value f reports at each scrape,
// for counts another component keeps; as Gauge.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

func (m *Metrics) app(id string) *appMetrics {
	if a, ok := m.apps.Load(id); ok {
		return a.(*appMetrics)
	}
	a := &appMetrics{
		sent: m.sent.WithLabelValues(id),
		send: m.sendSeconds.WithLabelValues(id),
		lag:  m.lag.WithLabelValues(id),
	}
	got, _ := m.apps.LoadOrStore(id, a)
	return got.(*appMetrics)
}

// ObserveSend implements messaging.Observer: the send's latency, and its
// error code when it failed.
func (m *Metrics) ObserveSend(app string, took time.Duration, err error) {
	a := m.app(app)
	a.send.Observe(took.Seconds())
	if err == nil {
		return
	}
	code := chat.ErrorCode(err)
	c, ok := a.errors.Load(code)
	if !ok {
		c, _ = a.errors.LoadOrStore(code, m.sendErrors.WithLabelValues(app, code))
	}
	c.(prometheus.Counter).Inc()
}

// messageStored counts one message stored for the sender's app.
func (m *Metrics) messageStored(app string) { m.app(app).sent.Inc() }

// Observers returns an Observer that hands each send to every one of obs
// (nil entries skipped), so that the metrics and the outage monitor can both
// watch sends.
func Observers(obs ...messaging.Observer) messaging.Observer {
	var list multiObserver
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	if len(list) == 1 {
		return list[0]
	}
	return list
}

type multiObserver []messaging.Observer

func (l multiObserver) ObserveSend(app string, took time.Duration, err error) {
	for _, o := range l {
		o.ObserveSend(app, took, err)
	}
}
