package detector

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkObserve measures the detector itself: one Observe per point on a
// synthetic minute-by-minute report stream (generated beforehand, so only
// the detector is timed). Report ns/point; the target is at most 1000
// (a million points a second on one core).
func BenchmarkObserve(b *testing.B) {
	s := newStream(9, 20)
	const n = 1 << 16
	ts := make([]time.Time, n)
	vs := make([]float64, n)
	for i := range n {
		ts[i], vs[i] = s.next()
	}
	for _, dir := range []struct {
		name string
		dir  Direction
	}{{"up", Up}, {"both", Both}} {
		b.Run(dir.name, func(b *testing.B) {
			b.ReportAllocs()
			se := NewSeries(DefaultConfig(), dir.dir)
			i := 0
			for b.Loop() {
				se.Observe(ts[i&(n-1)], vs[i&(n-1)])
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/point")
		})
	}
}

// BenchmarkRunCSV measures the offline mode end to end on testdata/jump.csv
// (parsing, detecting, formatting). The file has 400 rows, so the per-file
// setup (buffers, tables) weighs on it; BenchmarkRunCSVLong has NAB-sized
// files.
func BenchmarkRunCSV(b *testing.B) {
	in, err := os.ReadFile("testdata/jump.csv")
	if err != nil {
		b.Fatal(err)
	}
	rows := bytes.Count(in, []byte{'\n'}) - 1
	var out bytes.Buffer
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		out.Reset()
		if err := RunCSV(bytes.NewReader(in), &out); err != nil {
			b.Fatal(err)
		}
		n += rows
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/point")
}

// BenchmarkRunCSVLong is BenchmarkRunCSV on a 16,384-row file (a synthetic
// report stream sampled every 5 minutes, written beforehand), the size of
// NAB's longer files.
func BenchmarkRunCSVLong(b *testing.B) {
	s := newStream(9, 20)
	const rows = 1 << 14
	var in bytes.Buffer
	in.WriteString("timestamp,value\n")
	for range rows {
		t, v := s.next()
		for range 4 { // one row every 5 minutes
			s.next()
		}
		in.WriteString(t.Format("2006-01-02 15:04:05") + "," + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
	}
	var out bytes.Buffer
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		out.Reset()
		if err := RunCSV(bytes.NewReader(in.Bytes()), &out); err != nil {
			b.Fatal(err)
		}
		n += rows
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/point")
}

// BenchmarkOffline measures the offline scorer of RunCSV without parsing or
// formatting (seasonal Series, likelihood, CUSUM, records, novelty and the
// gates on every point); the target is the same, at most 1000 ns/point.
func BenchmarkOffline(b *testing.B) {
	s := newStream(9, 20)
	const n = 1 << 16
	ts := make([]time.Time, n)
	vs := make([]float64, n)
	for i := range n {
		ts[i], vs[i] = s.next()
	}
	b.ReportAllocs()
	o := newOffline(defaultOfflineParams())
	i := 0
	for b.Loop() {
		o.observe(ts[i&(n-1)], vs[i&(n-1)])
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/point")
}
