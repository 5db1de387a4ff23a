package status

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
)

// latencyBuckets is the size of each app's latency histogram: four buckets
// per doubling from 1µs, so the 95th percentile is known within 19%, up to
// about 2^(latencyBuckets/4) µs (over an hour); slower sends land in the
// last bucket.
const latencyBuckets = 4 * 32

// Signals counts each app's sends for the monitor. It implements
// messaging.Observer: ObserveSend only adds to atomic counters (after the
// first send of an app, which makes them), so it costs the send path a few
// tens of nanoseconds and never waits for the monitor. The monitor takes
// the counts once a minute.
type Signals struct {
	apps sync.Map // app id -> *sendCounters
}

var _ messaging.Observer = (*Signals)(nil)

// NewSignals returns empty counters.
func NewSignals() *Signals { return &Signals{} }

type sendCounters struct {
	sent    atomic.Int64 // sends that succeeded
	failed  atomic.Int64 // sends that failed on our side (5xx)
	latency [latencyBuckets]atomic.Int64
}

// ObserveSend counts one send. Client errors (bad input, rate limits,
// permission) are neither volume nor failure: they say nothing about
// whether the service works.
func (s *Signals) ObserveSend(app string, took time.Duration, err error) {
	failed := false
	if err != nil {
		switch chat.ErrorCode(err) {
		case chat.Unavailable, chat.Internal:
			failed = true
		default:
			return
		}
	}
	c := s.counters(app)
	if failed {
		c.failed.Add(1)
	} else {
		c.sent.Add(1)
	}
	c.latency[latencyBucket(took)].Add(1)
}

func (s *Signals) counters(app string) *sendCounters {
	if v, ok := s.apps.Load(app); ok {
		return v.(*sendCounters)
	}
	v, _ := s.apps.LoadOrStore(app, new(sendCounters))
	return v.(*sendCounters)
}

func latencyBucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	i := int(4 * math.Log2(us))
	return min(i, latencyBuckets-1)
}

// bucketUpper is the upper bound of bucket i in milliseconds.
func bucketUpper(i int) float64 {
	return math.Exp2(float64(i+1)/4) / 1000
}

// sendSample is one app's sends since the previous sample.
type sendSample struct {
	sent, failed float64
	// p95 is the 95th percentile of the send latency in milliseconds, NaN
	// when nothing was sent.
	p95 float64
}

// take returns app's counts since the last take and starts over. A send
// that lands while the counters are being read is counted in this sample
// or the next, never lost.
func (s *Signals) take(app string) sendSample {
	v, ok := s.apps.Load(app)
	if !ok {
		return sendSample{p95: math.NaN()}
	}
	c := v.(*sendCounters)
	out := sendSample{sent: float64(c.sent.Swap(0)), failed: float64(c.failed.Swap(0)), p95: math.NaN()}
	var hist [latencyBuckets]int64
	var n int64
	for i := range hist {
		hist[i] = c.latency[i].Swap(0)
		n += hist[i]
	}
	if n == 0 {
		return out
	}
	rank := int64(math.Ceil(0.95 * float64(n)))
	var seen int64
	for i, k := range hist {
		seen += k
		if seen >= rank {
			out.p95 = bucketUpper(i)
			break
		}
	}
	return out
}
