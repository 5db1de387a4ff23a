package main

import (
	"runtime"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
)

// serve on Pebble runs with one more P than the runtime chose, unless
// GOMAXPROCS is set; on the memory store it leaves it alone.
func TestServeRaisesGOMAXPROCS(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		procs int
	}{
		{"pebble", []string{"--data", t.TempDir()}, nil, pebblestore.Procs(defaultProcs)},
		{"pebble, GOMAXPROCS set", []string{"--data", t.TempDir()}, map[string]string{"GOMAXPROCS": "1"}, defaultProcs},
		{"memory", []string{"--store", "memory", "--data", t.TempDir()}, nil, defaultProcs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GOMAXPROCS(defaultProcs)
			getenv := func(k string) string { return tc.env[k] }
			_, stop := serveInProcess(t, append([]string{"--addr", "127.0.0.1:0", "--admin-token", "adm"}, tc.args...), getenv)
			if got := runtime.GOMAXPROCS(0); got != tc.procs {
				t.Errorf("GOMAXPROCS %d while serving, want %d", got, tc.procs)
			}
			stop()
		})
	}
}
