package ws

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func (p *workers) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// eventually polls cond: a worker becomes idle after its task returns, with
// nothing to wait on. (The package's other tests, outside it, have their own.)
func eventually(t *testing.T, what string, wait time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(wait); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
	}
}

// A worker runs the next task once idle, and ends after workerIdle.
func TestWorkersReuseThenEnd(t *testing.T) {
	base := runtime.NumGoroutine()
	var p workers
	done := make(chan struct{})
	p.run(func() { close(done) })
	<-done
	eventually(t, "the worker to be idle", 5*time.Second, func() bool { return p.idleCount() == 1 })

	release := make(chan struct{})
	running := make(chan struct{})
	p.run(func() { close(running); <-release })
	<-running
	if n := p.idleCount(); n != 0 {
		t.Fatalf("%d idle workers while the only one runs a task", n)
	}
	if n := runtime.NumGoroutine() - base; n != 1 {
		t.Fatalf("%d goroutines more than before, want the one worker", n)
	}
	close(release)
	eventually(t, "the worker to be idle again", 5*time.Second, func() bool { return p.idleCount() == 1 })
	eventually(t, "the idle worker to end", workerIdle+5*time.Second, func() bool {
		return p.idleCount() == 0 && runtime.NumGoroutine() <= base
	})
}

// Tasks do not wait for each other, and at most maxIdleWorkers stay.
func TestWorkersRunAtOnce(t *testing.T) {
	var p workers
	n := maxIdleWorkers + 44
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	var ended sync.WaitGroup
	ended.Add(n)
	for range n {
		p.run(func() {
			defer ended.Done()
			started.Done()
			<-release // every task blocks until all have started
		})
	}
	started.Wait()
	close(release)
	ended.Wait()
	eventually(t, "the workers to be idle", 5*time.Second, func() bool { return p.idleCount() == maxIdleWorkers })
	// An idle worker picked again runs the task.
	got := make(chan int, 1)
	p.run(func() { got <- 7 })
	if v := <-got; v != 7 {
		t.Fatalf("task result %d", v)
	}
}
