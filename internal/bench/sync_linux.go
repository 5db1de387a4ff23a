package bench

import (
	"os"
	"syscall"
)

// fdatasync syncs f's data as Pebble syncs its WAL on Linux.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
