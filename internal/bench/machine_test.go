package bench

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMeasureMachine measures both prices briefly: each is a positive
// figure, the sync file is gone afterwards, and the wakeup's helper
// goroutine has ended.
func TestMeasureMachine(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	base := runtime.NumGoroutine()
	m, err := measureMachine(t.Context(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// A wakeup and a sync take some CPU and a sync some time, but not
	// seconds each.
	for name, v := range map[string]float64{"wake CPU": m.WakeCPUUs, "sync CPU": m.SyncCPUUs, "sync": m.SyncUs} {
		if !(v > 0 && v < 1e6) {
			t.Errorf("%s: %v µs", name, v)
		}
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("left in the temporary directory: %v (%v)", left, err)
	}
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > base; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), base)
		}
	}
}

func TestMeasureMachineCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := measureMachine(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if _, _, err := measureSync(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sync: err %v", err)
	}
}
