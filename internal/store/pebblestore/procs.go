package pebblestore

// Procs returns the GOMAXPROCS for a process that commits through a Store,
// given the one the Go runtime chose: one more.
//
// Every commit waits for a WAL fdatasync, which keeps its thread in the
// kernel for 100–300 µs on the disks measured. The runtime hands that
// thread's P to other goroutines only once its monitor notices the thread
// is blocked, so with one P per core a core idles through part of every
// sync while runnable goroutines wait. On 2 cores one more P gave durable
// HTTP sends 1.07–1.19 × the rate and a lower p99 in the open loop, and
// left the closed loops' rates as they were (docs/benchmarks.md, "One
// more P"). serve and bench apply it unless GOMAXPROCS is set.
func Procs(chosen int) int { return chosen + 1 }
