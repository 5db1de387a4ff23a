package deadline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestFiresAtTheEndOfItsSlot(t *testing.T) {
	start := time.Now()
	ctx, cancel := WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	dl, ok := ctx.Deadline()
	if !ok {
		t.Fatal("no deadline")
	}
	if want := start.Add(120 * time.Millisecond); dl.Before(want) || dl.After(want.Add(Slot)) {
		t.Fatalf("deadline %v, want within a slot after %v", dl, want)
	}
	if dl.UnixNano()%int64(Slot) != 0 {
		t.Fatalf("deadline %v is not the end of a slot", dl)
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline: %v", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not done 5 s after a timeout of 120 ms")
	}
	if now := time.Now(); now.Before(dl) {
		t.Fatalf("done at %v, before its deadline %v", now, dl)
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline: %v, want DeadlineExceeded", err)
	}
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Cause: %v", err)
	}
}

type key struct{}

func TestValuesPassThrough(t *testing.T) {
	parent := context.WithValue(context.Background(), key{}, "v")
	ctx, cancel := WithTimeout(parent, time.Second)
	defer cancel()
	inner, cancel2 := WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	for _, c := range []context.Context{ctx, inner} {
		if got := c.Value(key{}); got != "v" {
			t.Fatalf("Value = %v, want v", got)
		}
	}
}

// A child that would end after its parent is its parent; one that ends
// first has its own, earlier deadline.
func TestNested(t *testing.T) {
	outer, cancel := WithTimeout(context.Background(), time.Second)
	defer cancel()
	later, cancel2 := WithTimeout(outer, time.Hour)
	defer cancel2()
	if later != outer {
		t.Fatal("a child ending after its parent is not the parent")
	}
	sooner, cancel3 := WithTimeout(outer, 100*time.Millisecond)
	defer cancel3()
	d1, _ := outer.Deadline()
	d2, _ := sooner.Deadline()
	if !d2.Before(d1) {
		t.Fatalf("child's deadline %v is not before its parent's %v", d2, d1)
	}
	select {
	case <-sooner.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the sooner child never ended")
	}
	if outer.Err() != nil {
		t.Fatal("the parent ended with its sooner child")
	}
}

// A parent that can be cancelled otherwise still cancels the child.
func TestCancellableParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := WithTimeout(parent, time.Hour)
	defer cancel()
	cancelParent()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the parent did not reach the child")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", ctx.Err())
	}
}

// Contexts made at once by many goroutines share slots, and every one of
// them ends.
func TestConcurrent(t *testing.T) {
	var (
		wg   sync.WaitGroup
		ends sync.Map // the slots' ends
	)
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Go(func() {
			d := time.Duration(10+g) * time.Millisecond
			var ctxs []context.Context
			for range 200 {
				ctx, cancel := WithTimeout(context.Background(), d)
				cancel()
				ctxs = append(ctxs, ctx)
			}
			for _, ctx := range ctxs {
				dl, _ := ctx.Deadline()
				ends.Store(dl.UnixNano(), true)
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
					errs <- errors.New("a context never ended")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	mu.Lock()
	ends.Range(func(end, _ any) bool {
		n++
		if slots[end.(int64)] != nil {
			t.Errorf("the slot ending at %d is still kept once it ended", end)
		}
		return true
	})
	mu.Unlock()
	if n > 64 {
		t.Errorf("%d slots for 64 timeouts", n)
	}
}

// BenchmarkWithTimeout compares a timeout of this package with the
// standard library's, as a WebSocket operation takes them: a 30 s one,
// and a 3 s one inside it.
func BenchmarkWithTimeout(b *testing.B) {
	b.Run("deadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			op, cancel := WithTimeout(context.Background(), 30*time.Second)
			call, cancel2 := WithTimeout(op, 3*time.Second)
			_ = call.Done()
			cancel2()
			cancel()
		}
	})
	b.Run("context", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			op, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			call, cancel2 := context.WithTimeout(op, 3*time.Second)
			_ = call.Done()
			cancel2()
			cancel()
		}
	})
}
