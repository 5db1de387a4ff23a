package pebblestore

// QueueDepth returns how many writes wait for the writer goroutine, for
// the metrics.
func (s *Store) QueueDepth() int { return len(s.reqs) }
