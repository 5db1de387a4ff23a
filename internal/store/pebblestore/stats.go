package pebblestore

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// QueueDepth returns how many writes wait for the writer goroutine, for
// the metrics.
func (s *Store) QueueDepth() int { return len(s.reqs) }

// stalls counts Pebble's write stalls: writes held back because flushes or
// compactions fell behind (memtables waiting, too many L0 files).
type stalls struct {
	count atomic.Int64
	nanos atomic.Int64
	began atomic.Int64 // UnixNano of the stall in progress; 0: none
}

func (st *stalls) begin(pebble.WriteStallBeginInfo) {
	st.count.Add(1)
	st.began.Store(time.Now().UnixNano())
}

func (st *stalls) end() {
	if b := st.began.Swap(0); b != 0 {
		st.nanos.Add(time.Now().UnixNano() - b)
	}
}

// seconds is the time spent stalled so far, the stall in progress included.
func (st *stalls) seconds() float64 {
	n := st.nanos.Load()
	if b := st.began.Load(); b != 0 {
		n += time.Now().UnixNano() - b
	}
	return float64(n) / 1e9
}

// Collector returns a Prometheus collector of the engine's own figures:
// WAL syncs, flushes, compactions, L0, write stalls and disk use, which say
// why commits got slower when they do. It reads Pebble's metrics once per
// scrape and reports nothing once the store is closed.
func (s *Store) Collector() prometheus.Collector { return engineCollector{s} }

type engineCollector struct{ s *Store }

// engineDescs holds every descriptor desc made, for Describe.
var engineDescs []*prometheus.Desc

func desc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc("switchboard_pebble_"+name, help, labels, nil)
	engineDescs = append(engineDescs, d)
	return d
}

var (
	descFsync = desc("wal_fsync_duration_seconds",
		"Time of each sync of the write-ahead log: every acknowledged write waits for one (shared by a batch).")
	descFlushes = desc("flushes_total",
		"Memtables flushed to sstables.")
	descCompactions = desc("compactions_total",
		"Compactions completed.")
	descWritten = desc("written_bytes_total",
		"Bytes written to disk, by what wrote them: wal, flush or compaction.", "by")
	descDebt = desc("compaction_debt_bytes",
		"Estimated bytes compactions must still rewrite for the levels to be in shape.")
	descL0Files = desc("l0_files",
		"sstables in level 0; past 32 Pebble stalls writes.")
	descL0Sublevels = desc("l0_sublevels",
		"Sublevels of level 0: how many sstables a read may have to consult there.")
	descMemtable = desc("memtable_bytes",
		"Bytes allocated to memtables, the one being written and those waiting to flush.")
	descDisk = desc("disk_bytes",
		"Disk space the store uses: sstables, write-ahead logs and obsolete files not yet deleted.")
	descStalls = desc("write_stalls_total",
		"Times Pebble held writes back because flushes or compactions fell behind.")
	descStallSeconds = desc("write_stall_seconds_total",
		"Time writes were held back by write stalls.")
)

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range engineDescs {
		ch <- d
	}
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	if s.reading() != nil {
		return
	}
	m := s.db.Metrics()
	s.mu.RUnlock()

	if h := fsyncHistogram(m.LogWriter.FsyncLatency); h != nil {
		ch <- h
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	total := m.Total()
	counter(descFlushes, float64(m.Flush.Count))
	counter(descCompactions, float64(m.Compact.Count))
	counter(descWritten, float64(m.WAL.BytesWritten), "wal")
	counter(descWritten, float64(total.BytesFlushed), "flush")
	counter(descWritten, float64(total.BytesCompacted), "compaction")
	gauge(descDebt, float64(m.Compact.EstimatedDebt))
	gauge(descL0Files, float64(m.Levels[0].NumFiles))
	gauge(descL0Sublevels, float64(m.Levels[0].Sublevels))
	gauge(descMemtable, float64(m.MemTable.Size))
	gauge(descDisk, float64(m.DiskSpaceUsage()))
	counter(descStalls, float64(s.stalls.count.Load()))
	counter(descStallSeconds, s.stalls.seconds())
}

// fsyncBounds are the bucket bounds reported of the WAL's sync times, in
// seconds. Pebble keeps 100 buckets, in nanoseconds (pebble.
// FsyncLatencyBuckets); these are ones of them (0.1 ms steps up to 5 ms,
// then the nearest below each round figure), so the counts are exact.
var fsyncBounds = func() []float64 {
	want := []float64{0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	var out []float64
	for _, w := range want {
		best := 0.0
		for _, b := range pebble.FsyncLatencyBuckets {
			if s := b / 1e9; s <= w*(1+1e-9) && s > best {
				best = s
			}
		}
		if best > 0 && (len(out) == 0 || best > out[len(out)-1]) {
			out = append(out, best)
		}
	}
	return out
}()

// fsyncHistogram turns Pebble's histogram of WAL sync times into ours: in
// seconds, at fsyncBounds. Nil when there is none (a read-only store).
func fsyncHistogram(h prometheus.Histogram) prometheus.Metric {
	if h == nil {
		return nil
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil || m.Histogram == nil {
		return nil
	}
	ph := m.Histogram
	buckets := make(map[float64]uint64, len(fsyncBounds))
	for _, b := range ph.Bucket {
		// The same division as fsyncBounds', so equal bounds are equal.
		if s := b.GetUpperBound() / 1e9; slices.Contains(fsyncBounds, s) {
			buckets[s] = b.GetCumulativeCount()
		}
	}
	return prometheus.MustNewConstHistogram(descFsync, ph.GetSampleCount(), ph.GetSampleSum()/1e9, buckets)
}
