//go:build race

package reliability

// raceEnabled: the race detector slows everything about tenfold, so the
// load tests offer less load.
const raceEnabled = true
