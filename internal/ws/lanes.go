package ws

// lanes holds, per conversation with an operation running, the operations
// waiting their turn behind it. A session mostly runs one conversation at
// a time, so the first lane is kept in place and a map is made only while
// a second one runs: a send then allocates nothing here, and an idle
// session holds no map.
type lanes struct {
	key  string
	q    []op
	busy bool // key's lane is in use
	more map[string][]op
}

// get returns key's waiting operations, and whether its lane is in use.
func (l *lanes) get(key string) ([]op, bool) {
	if l.busy && l.key == key {
		return l.q, true
	}
	q, ok := l.more[key]
	return q, ok
}

// set sets key's waiting operations, taking a lane if key has none.
func (l *lanes) set(key string, q []op) {
	switch _, inMore := l.more[key]; {
	case l.busy && l.key == key:
		l.q = q
	case !inMore && !l.busy:
		l.key, l.q, l.busy = key, q, true
	default:
		if l.more == nil {
			l.more = make(map[string][]op)
		}
		l.more[key] = q
	}
}

// free gives key's lane up.
func (l *lanes) free(key string) {
	if l.busy && l.key == key {
		l.key, l.q, l.busy = "", nil, false
		return
	}
	delete(l.more, key)
	if len(l.more) == 0 {
		l.more = nil
	}
}
