package pebblestore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather scrapes c into a map from metric name (with its label values) to
// the metric.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.Metric {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.Metric)
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			name := mf.GetName()
			for _, l := range m.Label {
				name += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
			}
			out[name] = m
		}
	}
	return out
}

func value(t *testing.T, ms map[string]*dto.Metric, name string) float64 {
	t.Helper()
	m, ok := ms[name]
	switch {
	case !ok:
		t.Fatalf("no metric %s", name)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric %s is neither a counter nor a gauge", name)
	return 0
}

func TestEngineMetrics(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	mustGroup(t, s, "g", user("a"), user("b"))
	before := gather(t, s.Collector())
	for i := range 20 {
		mustAppend(t, s, message("g", user("a"), fmt.Sprint("c", i)))
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	after := gather(t, s.Collector())

	h := after["switchboard_pebble_wal_fsync_duration_seconds"].GetHistogram()
	if h == nil {
		t.Fatal("no WAL sync histogram")
	}
	// Every append was synced, several at most per sync.
	if n := h.GetSampleCount(); n < 1 || n > 25 {
		t.Errorf("%d WAL syncs for 21 synced writes", n)
	}
	if h.GetSampleSum() <= 0 || h.GetSampleSum() > 10*float64(h.GetSampleCount()) {
		t.Errorf("WAL syncs took %v s in all, over %d syncs", h.GetSampleSum(), h.GetSampleCount())
	}
	if len(h.Bucket) != len(fsyncBounds) {
		t.Errorf("%d buckets, want %d", len(h.Bucket), len(fsyncBounds))
	}
	var prev uint64
	for _, b := range h.Bucket {
		if b.GetCumulativeCount() < prev || b.GetCumulativeCount() > h.GetSampleCount() {
			t.Errorf("bucket le=%v holds %d: not cumulative within %d", b.GetUpperBound(), b.GetCumulativeCount(), h.GetSampleCount())
		}
		prev = b.GetCumulativeCount()
	}
	if last := h.Bucket[len(h.Bucket)-1]; last.GetCumulativeCount() != h.GetSampleCount() {
		t.Errorf("the last bucket (%v s) holds %d of %d syncs", last.GetUpperBound(), last.GetCumulativeCount(), h.GetSampleCount())
	}

	if d := value(t, after, "switchboard_pebble_flushes_total") - value(t, before, "switchboard_pebble_flushes_total"); d < 1 {
		t.Errorf("flushes went up by %v after a flush", d)
	}
	if v := value(t, after, "switchboard_pebble_l0_files"); v < 1 {
		t.Errorf("%v files in L0 after a flush", v)
	}
	for _, name := range []string{
		"switchboard_pebble_written_bytes_total{by=wal}",
		"switchboard_pebble_written_bytes_total{by=flush}",
		"switchboard_pebble_disk_bytes",
		"switchboard_pebble_memtable_bytes",
	} {
		if v := value(t, after, name); v <= 0 {
			t.Errorf("%s = %v after 21 writes and a flush", name, v)
		}
	}
	if v := value(t, after, "switchboard_pebble_write_stalls_total"); v != 0 {
		t.Errorf("%v write stalls in an idle store", v)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ms := gather(t, s.Collector()); len(ms) != 0 {
		t.Errorf("a closed store reported %d metrics", len(ms))
	}
}

// The reported bounds are Pebble's own, so each bucket's count is exact.
func TestFsyncBoundsArePebbles(t *testing.T) {
	if len(fsyncBounds) < 10 || fsyncBounds[0] != 0.0001 || fsyncBounds[len(fsyncBounds)-1] < 9.99 {
		t.Fatalf("bounds %v: want 0.1 ms up to 10 s", fsyncBounds)
	}
	if !slices.IsSorted(fsyncBounds) {
		t.Errorf("bounds %v not ascending", fsyncBounds)
	}
	for _, b := range fsyncBounds {
		if !slices.ContainsFunc(pebble.FsyncLatencyBuckets, func(p float64) bool { return p/1e9 == b }) {
			t.Errorf("bound %v s is not one of Pebble's", b)
		}
	}
}

func TestStallsAddUp(t *testing.T) {
	var st stalls
	st.end() // an end without a beginning counts nothing
	st.begin(pebble.WriteStallBeginInfo{})
	time.Sleep(20 * time.Millisecond)
	if s := st.seconds(); s < 0.02 {
		t.Errorf("a stall in progress for 20 ms counts %v s", s)
	}
	st.end()
	s := st.seconds()
	if st.count.Load() != 1 || s < 0.02 || s > 5 {
		t.Errorf("after one stall of 20 ms: %d stalls, %v s", st.count.Load(), s)
	}
	time.Sleep(5 * time.Millisecond)
	if st.seconds() != s {
		t.Errorf("the time stalled grew after the stall ended: %v, then %v", s, st.seconds())
	}
}
