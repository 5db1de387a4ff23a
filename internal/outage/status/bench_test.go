package status

import (
	"testing"
	"time"
)

// BenchmarkObserveSend is what the monitor adds to each send.
func BenchmarkObserveSend(b *testing.B) {
	s := NewSignals()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.ObserveSend("messenger", 3*time.Millisecond, nil)
		}
	})
}
