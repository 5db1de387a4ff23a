package status

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// hub tells the event streams that something changed. A stream that has
// not taken the last signal yet gets no second one: it sends the state as
// it is when it gets round to it, so a slow reader never holds anything up.
type hub struct {
	mu     sync.Mutex // guards subs, closed
	subs   map[chan struct{}]struct{}
	closed bool
}

func newHub() *hub { return &hub{subs: map[chan struct{}]struct{}{}} }

// subscribe returns a channel that gets a value after each change and is
// closed when the hub closes, and a function that unsubscribes. It returns
// a nil channel once the hub is closed.
func (h *hub) subscribe() (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, func() {}
	}
	ch := make(chan struct{}, 1)
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// heartbeat is how often an idle event stream gets a comment line, so that
// proxies and the browser see it alive.
const heartbeat = 25 * time.Second

// events serves GET /status/events, Server-Sent Events: a "status" event
// with the snapshot of GET /v1/status at once and after every change (a
// sample, a state, an incident, the message store going away or coming
// back). A reader that falls behind gets only the latest state.
func (s *Service) events(w http.ResponseWriter, r *http.Request) {
	ch, unsubscribe := s.hub.subscribe()
	defer unsubscribe()
	if ch == nil {
		writeError(w, chat.Errorf(chat.Unavailable, "the server is shutting down"))
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
		return
	}
	send := func() bool {
		b, _ := json.Marshal(s.current(r.Context()))
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send() {
		return
	}
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case _, ok := <-ch:
			if !ok || !send() {
				return
			}
		case <-t.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
