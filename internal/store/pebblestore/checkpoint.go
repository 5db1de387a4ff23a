package pebblestore

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/switchboard-chat/switchboard/internal/store"
)

var _ store.Checkpointer = (*Store)(nil)

// Checkpoint writes a consistent copy of the store to dir (which must not
// exist), while the store keeps serving. Pebble hard-links the immutable
// sstables (copying them when dir is on another file system) and copies the
// WAL, so the copy holds every write that was durable when Checkpoint
// began: every call that had returned. The copy opens with Open like any
// data directory.
func (s *Store) Checkpoint(ctx context.Context, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	// WithFlushedWAL: the WAL's tail is flushed first, so that what was
	// applied but not yet synced (the batch in the pipeline) is whole in the
	// copy; it was not acknowledged, so either way nothing acknowledged is
	// missing.
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("pebblestore: checkpoint to %s: %w", dir, err)
	}
	return nil
}
