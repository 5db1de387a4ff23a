package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints a run's result for people.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	shape := fmt.Sprintf("%d users, %d direct conversations across two apps", r.Users, r.Conversations)
	if r.Workload == Groups {
		shape = fmt.Sprintf("%d users, %d groups of %d mixing two apps", r.Users, r.Conversations, r.GroupSize)
	}
	row("workload", "%s (%s)", r.Workload, shape)
	if r.Loop == "open" {
		row("load", "open loop, %s messages/s in all, %d-byte bodies", thousands(int64(r.Rate)), r.BodySize)
	} else {
		row("load", "closed loop, %d in flight per user, %d-byte bodies", r.Window, r.BodySize)
	}
	row("server", "%s", r.Server)
	row("measured", "%.1f s after %.1f s of warmup; drain %.1f s", r.DurationS, r.WarmupS, r.DrainS)
	row("sent", "%s\t%s/s", thousands(r.Sent), thousands(int64(r.SentPerSec)))
	row("delivered", "%s\t%s/s", thousands(r.Delivered), thousands(int64(r.DeliveredPerSec)))
	row("latency", "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms", r.P50Ms, r.P90Ms, r.P99Ms, r.P999Ms, r.MaxMs)
	row("ack latency", "p50 %.2f ms  p99 %.2f ms", r.AckP50Ms, r.AckP99Ms)
	row("lost", "%d", r.Lost)
	row("duplicated", "%d", r.Duplicated)
	row("out of order", "%d", r.OutOfOrder)
	row("errors", "%d (reconnects %d, unacknowledged at the end %d)", r.Errors, r.Reconnects, r.Unacked)
	if r.FirstError != "" {
		row("first error", "%s", r.FirstError)
	}
	if r.Warning != "" {
		row("warning", "%s", r.Warning)
	}
	row("cpu", "%.2f cores of %d busy in this process (GOMAXPROCS %d), %.0f µs per delivery", r.CPUCores, r.NumCPU, r.GoMaxProcs, r.CPUPerDeliveryUs)
	if r.ServerPID != 0 {
		row("server cpu", "%.2f cores in the server (pid %d), %.0f µs per delivery", r.ServerCPUCores, r.ServerPID, r.ServerCPUPerDeliveryUs)
	}
	row("load average", "%.2f before, %.2f %.2f %.2f after", r.LoadBefore, r.LoadAvg[0], r.LoadAvg[1], r.LoadAvg[2])
	if y := r.Yardstick; y != nil {
		row("yardstick", "relay %s/s before, %s/s after (%.1f s each; how fast the machine was)",
			thousands(int64(y.BeforePerSec)), thousands(int64(y.AfterPerSec)), y.DurationS)
		row("", "relay unbatched %s/s before, %s/s after (the kind of relay the pairs target's reference of about 140,000/s came from)",
			thousands(int64(y.UnbatchedBeforePerSec)), thousands(int64(y.UnbatchedAfterPerSec)))
		if y.OpenRate > 0 {
			row("", "relay at %s/s: p50 %.2f ms, p99 %.2f ms before; p50 %.2f ms, p99 %.2f ms after (what sockets and scheduling alone cost)",
				thousands(int64(y.OpenRate)), y.OpenBeforeP50Ms, y.OpenBeforeP99Ms, y.OpenAfterP50Ms, y.OpenAfterP99Ms)
		}
		b, a := y.MachineBefore, y.MachineAfter
		row("", "a thread's wakeup %.0f µs of CPU before, %.0f after; a 4 KiB write and fdatasync %.0f µs of CPU (%.0f µs) before, %.0f (%.0f) after (what the machine charges)",
			b.WakeCPUUs, a.WakeCPUUs, b.SyncCPUUs, b.SyncUs, a.SyncCPUUs, a.SyncUs)
	}
	return tw.Flush()
}
