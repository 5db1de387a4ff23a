package detector

import (
	"math"
	"testing"
	"time"
)

// A flat series then one wild value: the Series divides by a spread of
// almost nothing, and an excess that overflows to +Inf once made the score
// Inf/(1+Inf) = NaN (NAB's ec2_disk_write_bytes_1ef3de has zeros then
// 2e7). Every score must stay in [0, 1].
func TestOfflineScoreInRange(t *testing.T) {
	t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	for _, wild := range []float64{1e6, 1e100, 1e300, math.MaxFloat64, -math.MaxFloat64} {
		o := newOffline(defaultOfflineParams())
		for i := range 1000 {
			v := 5.0
			if i == 600 {
				v = wild
			}
			if s := o.observe(t0.Add(time.Duration(i)*5*time.Minute), v); !(s >= 0 && s <= 1) {
				t.Fatalf("wild value %g: row %d scored %v, want a number in [0, 1]", wild, i, s)
			}
		}
	}
}

// A series with a spike at 03:00 every day (a nightly job): once the hour
// has seen it, the spike is routine and pages nobody; the same spike at
// 15:00, where it has never happened, is an onset.
func TestOfflineRoutineSpike(t *testing.T) {
	t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	const perDay = 288
	odd := 10*perDay + 15*12 // day 10, 15:00
	o := newOffline(defaultOfflineParams())
	var onsets []int
	for i := range 14 * perDay {
		ts := t0.Add(time.Duration(i) * 5 * time.Minute)
		v := 10 + 0.3*math.Sin(float64(i)*1.7) // noise
		if ts.Hour() == 3 && ts.Minute() == 0 || i == odd {
			v = 16
		}
		if o.observe(ts, v) >= 0.5 {
			onsets = append(onsets, i)
		}
	}
	t.Logf("onsets at rows %v", onsets)
	var routine, odds int
	for _, i := range onsets {
		switch {
		case i >= odd && i < odd+12:
			odds++
		case i >= 2*perDay:
			routine++ // from the third night on, the spike is known
		}
	}
	if routine > 0 || odds != 1 {
		t.Fatalf("onsets %v: want none at the nightly spike from day 2 on (got %d) and one at the 15:00 spike on day 10, row %d (got %d)",
			onsets, routine, odd, odds)
	}
}

// The record test scores a value by how far it goes beyond the range seen
// so far, in RecordMargin of that range.
func TestOfflineRecord(t *testing.T) {
	var r record
	r.observe(10, 0.1)
	r.observe(20, 0.1) // a record against a range of nothing
	for _, v := range []float64{15, 12, 10, 20} {
		if e := r.observe(v, 0.1); e != 0 {
			t.Fatalf("value %v inside the range [10, 20] scored %v", v, e)
		}
	}
	if e := r.observe(21, 0.1); math.Abs(e-1) > 1e-6 {
		t.Fatalf("21 after a range of [10, 20] scored %v, want 1 (a tenth of the range beyond)", e)
	}
	if e := r.observe(20.5, 0.1); e != 0 {
		t.Fatalf("20.5, inside the new range [10, 21], scored %v", e)
	}
	if e := r.observe(7.8, 0.1); math.Abs(e-2) > 1e-6 {
		t.Fatalf("7.8 below [10, 21] scored %v, want 2", e)
	}
}

// Novelty: a repeating pattern soon brings no new word; a new shape within
// the same range brings one word after another until its excess reaches 1.
func TestOfflineNovelty(t *testing.T) {
	p := defaultOfflineParams()
	w := newNovelty(&p)
	saw := func(v float64) float64 { return w.observe(v, 0, 6, &p) }
	cycle := []float64{0.5, 1.5, 2.5, 3.5, 4.5, 5.5}
	var e float64
	for i := range 600 {
		e = saw(cycle[i%len(cycle)])
	}
	if e > 0.01 {
		t.Fatalf("a pattern repeated 100 times still scores %v", e)
	}
	// The same levels in another order: a new shape, no new extreme.
	shape := []float64{5.5, 0.5, 4.5, 1.5, 3.5, 2.5, 0.5, 5.5, 2.5}
	fired := -1
	for i := range 60 {
		if saw(shape[i%len(shape)]) >= 1 {
			fired = i
			break
		}
	}
	if fired < 0 {
		t.Fatal("a new shape within the same range never reached the novelty threshold")
	}
	if len(w.seen) != 64 { // 6 levels in 3 bits, 4 long: 4096 bits
		t.Fatalf("novelty table of %d words of 64 bits, want 64", len(w.seen))
	}
}
