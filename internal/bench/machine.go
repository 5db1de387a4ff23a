package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/switchboard-chat/switchboard/internal/cputime"
)

// Machine holds two prices this machine charges, which a durable server
// pays per message when messages come one by one (an open loop at a
// modest rate) and which differ several times between the virtual
// machines these benchmarks run on, more than anything in the relay's
// rate shows: waking a thread that sleeps, and syncing a write to disk.
type Machine struct {
	// WakeCPUUs is the CPU time of one wakeup of a sleeping thread,
	// including its going back to sleep: two goroutines locked to their
	// own threads hand a token back and forth, so each hand-over wakes
	// the other thread.
	WakeCPUUs float64 `json:"wake_cpu_us"`
	// SyncCPUUs is the CPU time of a 4 KiB write and fdatasync of a file
	// in the temporary directory, overwriting a file written before, as
	// Pebble's recycled WAL files are; SyncUs is its median wall time.
	SyncCPUUs float64 `json:"fsync_cpu_us"`
	SyncUs    float64 `json:"fsync_us"`
}

const (
	syncBlock = 4 << 10
	syncFile  = 256 * syncBlock // the blocks written over and over
)

// measureMachine measures both prices, each for d.
func measureMachine(ctx context.Context, d time.Duration) (Machine, error) {
	var m Machine
	var err error
	if m.WakeCPUUs, err = measureWake(ctx, d); err != nil {
		return m, err
	}
	m.SyncCPUUs, m.SyncUs, err = measureSync(ctx, d)
	return m, err
}

// measureWake hands a token between two goroutines, each locked to its own
// OS thread, for d, and returns the CPU per hand-over: a blocked locked
// goroutine parks its thread, so every hand-over wakes a thread.
func measureWake(ctx context.Context, d time.Duration) (float64, error) {
	ping, pong := make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for range ping {
			pong <- struct{}{}
		}
	}()
	defer close(ping)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, start := cputime.Self(), time.Now()
	n := 0
	for ; n == 0 || time.Since(start) < d; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		ping <- struct{}{}
		<-pong
	}
	return usPer(cputime.Self()-cpu0, int64(2*n)), nil
}

// measureSync writes and syncs 4 KiB blocks of a file in the temporary
// directory for d, and returns the CPU per sync and the median sync's wall
// time.
func measureSync(ctx context.Context, d time.Duration) (cpuUs, wallUs float64, err error) {
	f, err := os.CreateTemp("", "switchboard-bench-sync-*")
	if err != nil {
		return 0, 0, fmt.Errorf("bench: machine: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Written and synced once first, so that the syncs measured change
	// no file size or block allocation.
	if _, err := f.Write(make([]byte, syncFile)); err != nil {
		return 0, 0, fmt.Errorf("bench: machine: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, 0, fmt.Errorf("bench: machine: %w", err)
	}
	block := make([]byte, syncBlock)
	var walls []time.Duration
	cpu0, start := cputime.Self(), time.Now()
	for i := 0; i == 0 || time.Since(start) < d; i++ {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		t := time.Now()
		if _, err := f.WriteAt(block, int64(i%(syncFile/syncBlock))*syncBlock); err != nil {
			return 0, 0, fmt.Errorf("bench: machine: %w", err)
		}
		if err := fdatasync(f); err != nil {
			return 0, 0, fmt.Errorf("bench: machine: %w", err)
		}
		walls = append(walls, time.Since(t))
	}
	cpuUs = usPer(cputime.Self()-cpu0, int64(len(walls)))
	slices.Sort(walls)
	return cpuUs, float64(walls[len(walls)/2]) / 1e3, nil
}

// usPer returns t per n, in µs: the CPU per delivery of the runs and the
// relay, and per wakeup or sync of the machine's prices.
func usPer(t time.Duration, n int64) float64 { return float64(t) / 1e3 / float64(n) }
