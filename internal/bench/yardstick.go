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
type Yardstick struct {
	// Each relay run is measured for DurationS after a warmup of half as
	// long.
	DurationS       float64 `json:"duration_s"`
	BeforePerSec    float64 `json:"relay_before_per_sec"`
	AfterPerSec     float64 `json:"relay_after_per_sec"`
	BeforeCPUPerDel float64 `json:"relay_before_cpu_us_per_delivery"`
	AfterCPUPerDel  float64 `json:"relay_after_cpu_us_per_delivery"`
}

// yardstick runs the relay for d (after d/2 of warmup) in its
// default shape and returns its rate and CPU time per delivery. progress
// and terminal are as in Config.
func yardstick(ctx context.Context, d time.Duration, cfg Config) (perSec, cpuUs float64, err error) {
	y := Config{Duration: d, Warmup: d / 2, Progress: cfg.Progress, Terminal: cfg.Terminal, ProgressInterval: cfg.ProgressInterval}
	if y.Warmup == 0 {
		y.Warmup = -1 // none
	}
	r, err := Relay(ctx, y)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: yardstick: %w", err)
	}
	return r.DeliveredPerSec, r.CPUPerDeliveryUs, nil
}

// RunWithYardstick runs the relay for d, then Run(ctx, cfg), then the relay
// again, and records both relay runs in the result's Yardstick. With d
// zero it is Run.
func RunWithYardstick(ctx context.Context, cfg Config, d time.Duration) (*Result, error) {
	if d <= 0 {
		return Run(ctx, cfg)
	}
	y := &Yardstick{DurationS: d.Seconds()}
	var err error
	if y.BeforePerSec, y.BeforeCPUPerDel, err = yardstick(ctx, d, cfg); err != nil {
		return nil, err
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		return res, err
	}
	if y.AfterPerSec, y.AfterCPUPerDel, err = yardstick(ctx, d, cfg); err != nil {
		return nil, err
	}
	res.Yardstick = y
	return res, nil
}
