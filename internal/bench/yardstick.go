package bench

import (
	"context"
	"fmt"
	"time"
)

// Yardstick is the relay's rate taken just before and just after a run,
// always in the same shape (the relay's defaults: 200 users, 16 in flight
// each, 64-byte bodies), so that a figure carries how fast the machine was
// while it was measured. The machines these benchmarks run on are shared:
// the relay's rate has been seen to change 2.4 times within an hour on one.
//
// Around an open loop the relay also runs open, at the run's rate (200
// users still): its latencies are what this machine's sockets and
// scheduler alone cost at that rate, a floor for the run's.
//
// The relay also runs unbatched (Config.Unbatched), the kind of relay the
// pairs target's reference figure (about 140,000/s) came from, so that a
// run can be set beside that figure; neither relay predicts Switchboard's
// own rate from one machine to another (docs/benchmarks.md). Before and
// after the relays it measures two prices of the machine (Machine), each
// for a quarter of the relay's time.
type Yardstick struct {
	// Each relay run is measured for DurationS after a warmup of half as
	// long.
	DurationS       float64 `json:"duration_s"`
	BeforePerSec    float64 `json:"relay_before_per_sec"`
	AfterPerSec     float64 `json:"relay_after_per_sec"`
	BeforeCPUPerDel float64 `json:"relay_before_cpu_us_per_delivery"`
	AfterCPUPerDel  float64 `json:"relay_after_cpu_us_per_delivery"`

	UnbatchedBeforePerSec float64 `json:"relay_unbatched_before_per_sec"`
	UnbatchedAfterPerSec  float64 `json:"relay_unbatched_after_per_sec"`

	// The open relay's, with an open loop only.
	OpenRate        float64 `json:"open_rate,omitempty"`
	OpenBeforeP50Ms float64 `json:"relay_open_before_p50_ms,omitempty"`
	OpenBeforeP99Ms float64 `json:"relay_open_before_p99_ms,omitempty"`
	OpenAfterP50Ms  float64 `json:"relay_open_after_p50_ms,omitempty"`
	OpenAfterP99Ms  float64 `json:"relay_open_after_p99_ms,omitempty"`

	MachineBefore Machine `json:"machine_before"`
	MachineAfter  Machine `json:"machine_after"`
}

// yardstick runs the relay for d (after d/2 of warmup) in its default
// shape, in an open loop at rate when that is above zero, unbatched when
// asked; progress and terminal are as in Config.
func yardstick(ctx context.Context, d time.Duration, rate float64, unbatched bool, cfg Config) (*RelayResult, error) {
	y := Config{Duration: d, Warmup: d / 2, Rate: rate, Unbatched: unbatched, Progress: cfg.Progress, Terminal: cfg.Terminal, ProgressInterval: cfg.ProgressInterval}
	if y.Warmup == 0 {
		y.Warmup = -1 // none
	}
	r, err := Relay(ctx, y)
	if err != nil {
		return nil, fmt.Errorf("bench: yardstick: %w", err)
	}
	return r, nil
}

// measure measures the machine's prices and runs the yardstick's relays
// (closed, closed unbatched, then open when the run is), and records them
// as before or after the run.
func (y *Yardstick) measure(ctx context.Context, d time.Duration, cfg Config, after bool) error {
	m, err := measureMachine(ctx, d/4)
	if err != nil {
		return err
	}
	r, err := yardstick(ctx, d, 0, false, cfg)
	if err != nil {
		return err
	}
	u, err := yardstick(ctx, d, 0, true, cfg)
	if err != nil {
		return err
	}
	var o *RelayResult
	if cfg.Rate > 0 {
		if o, err = yardstick(ctx, d, cfg.Rate, false, cfg); err != nil {
			return err
		}
		y.OpenRate = cfg.Rate
	}
	if after {
		y.MachineAfter, y.UnbatchedAfterPerSec = m, u.DeliveredPerSec
		y.AfterPerSec, y.AfterCPUPerDel = r.DeliveredPerSec, r.CPUPerDeliveryUs
		if o != nil {
			y.OpenAfterP50Ms, y.OpenAfterP99Ms = o.P50Ms, o.P99Ms
		}
		return nil
	}
	y.MachineBefore, y.UnbatchedBeforePerSec = m, u.DeliveredPerSec
	y.BeforePerSec, y.BeforeCPUPerDel = r.DeliveredPerSec, r.CPUPerDeliveryUs
	if o != nil {
		y.OpenBeforeP50Ms, y.OpenBeforeP99Ms = o.P50Ms, o.P99Ms
	}
	return nil
}

// RunWithYardstick runs the relay for d, then Run(ctx, cfg), then the relay
// again, and records both relay runs in the result's Yardstick. With d
// zero it is Run.
func RunWithYardstick(ctx context.Context, cfg Config, d time.Duration) (*Result, error) {
	if d <= 0 {
		return Run(ctx, cfg)
	}
	y := &Yardstick{DurationS: d.Seconds()}
	if err := y.measure(ctx, d, cfg, false); err != nil {
		return nil, err
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		return res, err
	}
	if err := y.measure(ctx, d, cfg, true); err != nil {
		return nil, err
	}
	res.Yardstick = y
	return res, nil
}
