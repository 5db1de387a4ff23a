//go:build !linux

package bench

import "os"

// fdatasync syncs f; only Linux has fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }
