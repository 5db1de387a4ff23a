package store

import "context"

// Checkpointer is implemented by stores that can write a consistent copy of
// themselves to a local directory while they serve (an optional capability,
// type-asserted by the backup call). The copy holds at least every write
// that returned before Checkpoint was called. dir must not exist yet; it
// is created. A store that wraps another (a decorator) implements it by
// passing the call on, and returns an error matching errors.ErrUnsupported
// when the store beneath cannot.
type Checkpointer interface {
	Checkpoint(ctx context.Context, dir string) error
}
