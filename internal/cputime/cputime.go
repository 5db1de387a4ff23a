// Package cputime reads the CPU time a process has used, for the
// benchmarks that report CPU per operation beside the rate: on a shared
// machine the rate varies more than the cost.
package cputime

import (
	"syscall"
	"time"
)

// Self is this process's user plus system CPU time so far; zero when it
// cannot be read.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
