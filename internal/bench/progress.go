package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress writes the run's progress: on a terminal one line redrawn in
// place with a bar, elsewhere a plain line each time. A nil writer writes
// nothing.
type progress struct {
	w        io.Writer
	terminal bool
	drawn    bool // a line is on the terminal, not yet ended
}

func newProgress(w io.Writer, terminal bool) *progress {
	return &progress{w: w, terminal: terminal}
}

// note writes a line of its own.
func (p *progress) note(s string) {
	if p.w == nil {
		return
	}
	p.end()
	fmt.Fprintln(p.w, "bench: "+s)
}

// update shows where the run stands: done is the fraction of the sending
// time behind, rates per second over the last interval, p99 in
// microseconds (negative: none yet).
func (p *progress) update(phase string, done float64, at, total time.Duration, sentPerSec, delPerSec float64, p99us int64, errs int64) {
	if p.w == nil {
		return
	}
	p99 := "-"
	if p99us >= 0 {
		p99 = fmt.Sprintf("%.2fms", float64(p99us)/1000)
	}
	stats := fmt.Sprintf("%-7s %5.1f/%.0fs  sent %s/s  delivered %s/s  p99 %s  errors %d",
		phase, at.Seconds(), total.Seconds(), thousands(int64(sentPerSec)), thousands(int64(delPerSec)), p99, errs)
	if !p.terminal {
		fmt.Fprintln(p.w, "bench: "+stats)
		return
	}
	const width = 24
	n := int(done * width)
	bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
	// \r and erase-to-end-of-line redraw the line in place.
	fmt.Fprintf(p.w, "\r[%s] %s\x1b[K", bar, stats)
	p.drawn = true
}

// count shows how many of total are done, for the idle connections.
func (p *progress) count(what string, n, total, errs int64) {
	if p.w == nil {
		return
	}
	stats := fmt.Sprintf("%s %s of %s  errors %d", what, thousands(n), thousands(total), errs)
	if !p.terminal {
		fmt.Fprintln(p.w, "bench: "+stats)
		return
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", stats)
	p.drawn = true
}

// end finishes a line drawn in place.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// thousands formats n with commas: 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ticks is what the progress line of a run reads at each tick.
type ticks struct {
	every           time.Duration
	now             func() int64 // nanoseconds since sending began
	warmNs, endNs   int64        // the measured window
	sent, delivered *counter
	lat             *shardedHist
	errs            func() int64
}

// showProgress writes the progress line every t.every until done is
// closed.
func showProgress(p *progress, done <-chan struct{}, t ticks) {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	lastAt, lastSent, lastDel := time.Now(), int64(0), int64(0)
	for {
		select {
		case <-done:
			p.end()
			return
		case <-tick.C:
		}
		now, at := t.now(), time.Now()
		sent, del := t.sent.load(), t.delivered.load()
		secs := at.Sub(lastAt).Seconds()
		phase := "measure"
		switch {
		case now < t.warmNs:
			phase = "warmup"
		case now >= t.endNs:
			phase = "drain"
		}
		p99 := int64(-1) // none yet: the warmup is not measured
		if h := t.lat.merged(); h.TotalCount() > 0 {
			p99 = h.ValueAtQuantile(99)
		}
		p.update(phase, min(float64(now)/float64(t.endNs), 1), time.Duration(now), time.Duration(t.endNs),
			float64(sent-lastSent)/secs, float64(del-lastDel)/secs, p99, t.errs())
		lastAt, lastSent, lastDel = at, sent, del
	}
}
