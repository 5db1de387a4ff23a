package ws

import (
	"slices"
	"sync"
	"time"
)

// workers runs the sessions' operations on goroutines kept between
// operations. A new goroutine starts with a 2 KiB stack, and a send needs
// about 4 KiB of it (Service.SendBatch's frames), so a goroutine per
// operation copied its stack as it grew, at every send: 2% of the CPU of
// the open loop, where each message is an operation of its own. A kept
// goroutine has grown its stack already. Idle ones end after workerIdle,
// so that idle sessions cost none.
type workers struct {
	mu   sync.Mutex
	idle []*worker // last in, first out: the most recent keeps its stack warm
}

type worker struct {
	next chan func() // one task at a time: a worker is idle when handed one
}

// Bounds on the goroutines kept idle, and on how long each stays.
const (
	maxIdleWorkers = 256
	workerIdle     = time.Second
)

// run runs f on an idle worker, or on a new one.
func (p *workers) run(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.next <- f // buffered: never blocks
		return
	}
	p.mu.Unlock()
	go p.loop(f)
}

func (p *workers) loop(f func()) {
	w := &worker{next: make(chan func(), 1)}
	var t *time.Timer
	for {
		f()
		f = nil // what it held may go while this waits
		p.mu.Lock()
		if len(p.idle) >= maxIdleWorkers {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		if t == nil {
			t = time.NewTimer(workerIdle)
		} else {
			t.Reset(workerIdle)
		}
		select {
		case f = <-w.next:
			continue
		case <-t.C:
		}
		// Timed out, unless run took this worker meanwhile: then its task
		// is on the way.
		p.mu.Lock()
		if i := slices.Index(p.idle, w); i >= 0 {
			p.idle = slices.Delete(p.idle, i, i+1)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		f = <-w.next
	}
}
