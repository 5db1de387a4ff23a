package client

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/wsframe"
)

// ErrClosed is returned by a Stream's methods after Close, and resolves the
// sends still in its outbox then. Such a send may or may not have been
// stored; sending it again with the same ClientID (Client.Send) tells.
var ErrClosed = errors.New("switchboard: stream closed")

// State is the state of a Stream's connection.
type State int

const (
	// Connecting: dialing, or waiting to dial again after a failure.
	Connecting State = iota
	// Connected: the socket is open and the backlog is being replayed.
	Connected
	// Live: the backlog is done; updates arrive as they happen.
	Live
	// Closed: Close was called.
	Closed
)

func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Live:
		return "live"
	case Closed:
		return "closed"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Event is one thing a Stream delivers: exactly one field is set.
type Event struct {
	Update *Update
	Typing *Typing
	State  *StateChange
}

// Typing says that From is typing in a conversation.
type Typing struct {
	ConversationID string `json:"conversation_id"`
	From           string `json:"from"`
}

// StateChange reports the connection's new state, with the stream's cursor
// at that moment and, when a connection ended or failed, why.
type StateChange struct {
	State  State
	Cursor int64
	Err    error
}

// Outgoing is a message in a Stream's outbox: it is sent whenever the
// stream is connected, sent again with the same ClientID after every
// reconnect until the server acknowledges it, and resolved with the server's
// answer or with a non-retryable error.
type Outgoing struct {
	ClientID       string
	ConversationID string

	frame []byte
	done  chan struct{}
	sent  *Sent
	err   error
	tries int  // retryable errors answered so far
	retry bool // answered with a retryable error: due at the next retry flush
}

// Done is closed once the message is resolved.
func (o *Outgoing) Done() <-chan struct{} { return o.done }

// Result returns the answer once Done is closed.
func (o *Outgoing) Result() (*Sent, error) {
	<-o.done
	return o.sent, o.err
}

// Wait waits for the answer, or for ctx to end (the message stays in the
// outbox then).
func (o *Outgoing) Wait(ctx context.Context) (*Sent, error) {
	select {
	case <-o.done:
		return o.sent, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// request is a read receipt waiting for its ack.
type request struct {
	frame   []byte
	done    chan struct{}
	readSeq int64
	err     error
}

// Stream is the user's live stream over the WebSocket, with an outbox. It
// delivers every update once, in cursor order, on Events, and reconnects by
// itself with exponential backoff and jitter, resuming after the last
// cursor delivered. Read Events promptly: while it is full, the stream
// stops reading from the socket, and the server drops a client that falls
// too far behind (the stream then reconnects and resumes).
type Stream struct {
	c      *Client
	events chan Event
	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	closed <-chan struct{} // ctx.Done()
	done   chan struct{}   // closed when run has returned

	mu     sync.Mutex // guards every field below
	base   int        // index in c.bases of the URL to dial next
	cursor int64
	state  State
	conn   *websocket.Conn // nil while disconnected
	wq     [][]byte        // frames for the current connection's writer
	wake   chan struct{}   // the current connection's writer's signal
	outbox map[string]*Outgoing
	order  []*Outgoing // the outbox in send order
	reqs   map[string]*request
	room   chan struct{} // signalled when the outbox shrinks
	nextID uint64
	isDown bool // Close has resolved everything; nothing more is accepted
	// retryDue is set while a retry flush is scheduled (retryLater).
	retryDue bool
}

// Connect opens the stream after cursor after (0: from the start). The
// first connection is made before Connect returns, so that a bad token or
// address fails here; later ones are made in the background.
func (c *Client) Connect(ctx context.Context, after int64) (*Stream, error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &Stream{
		c:      c,
		events: make(chan Event, c.opts.EventBuffer),
		ctx:    sctx,
		cancel: cancel,
		closed: sctx.Done(),
		done:   make(chan struct{}),
		cursor: after,
		outbox: make(map[string]*Outgoing),
		reqs:   make(map[string]*request),
		room:   make(chan struct{}, 1),
	}
	// Each URL once, while the error says the server could not be reached.
	var conn *link
	var err error
	for range c.bases {
		if conn, err = s.dial(ctx); err == nil {
			break
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != "unavailable" || ctx.Err() != nil {
			break
		}
		s.nextBase()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	go s.run(conn)
	return s, nil
}

// Events delivers updates, typing notices and state changes. It is closed
// after Close.
func (s *Stream) Events() <-chan Event { return s.events }

// Cursor is the cursor of the last update delivered.
func (s *Stream) Cursor() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor
}

// State is the connection's state now.
func (s *Stream) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Close ends the stream, resolves what is left in the outbox with
// ErrClosed, and closes Events.
func (s *Stream) Close() error {
	s.cancel()
	s.mu.Lock()
	if s.conn != nil {
		s.conn.CloseNow()
	}
	s.mu.Unlock()
	<-s.done
	return nil
}

// nextBase makes the next dial go to the next URL of Options.FallbackURLs
// (or back to the first).
func (s *Stream) nextBase() {
	s.mu.Lock()
	s.base = (s.base + 1) % len(s.c.bases)
	s.mu.Unlock()
}

// link is one connection: the WebSocket and, when the transport allows,
// the socket under it, to gather writes (nil otherwise). Over TLS the
// library frames and encrypts; without, the stream frames its data itself.
type link struct {
	ws      *websocket.Conn
	cork    *corkConn
	overTLS bool
	// frames reads the frames from the socket itself when the stream
	// frames its writes (nil: through the library). The library's reader
	// takes a lock and a context per frame, and reads through two buffers.
	frames *wsframe.Reader
}

// readLimit bounds a message from the server.
const readLimit = 1 << 20

func (s *Stream) dial(ctx context.Context) (*link, error) {
	s.mu.Lock()
	after := s.cursor
	base := s.c.bases[s.base]
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// merge_acks: the ack of a send on this socket comes in the place of
	// the update of its message, which then does not come on its own (the
	// frame says in_stream): one frame less per message sent. A server
	// that does not know the option sends both, which handle takes too.
	u := base + "/v1/ws?merge_acks=true&after=" + strconv.FormatInt(after, 10)
	var (
		cork    *corkConn
		overTLS bool
	)
	conn, resp, err := websocket.Dial(traceCork(ctx, &cork, &overTLS), u, &websocket.DialOptions{
		HTTPClient: s.c.ws,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + s.c.currentToken()}},
	})
	if err != nil {
		if cork != nil {
			cork.takeOver() // ends the tap, the connection going back to the pool
		}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, readError(resp)
		}
		if ctx.Err() != nil && ctx.Err() != context.DeadlineExceeded {
			return nil, ctx.Err()
		}
		return nil, &Error{Code: "unavailable", Message: err.Error()}
	}
	return newLink(conn, cork, overTLS), nil
}

// newLink makes the link of a WebSocket whose handshake ran on cork (nil
// when the transport has none), over TLS or not.
func newLink(conn *websocket.Conn, cork *corkConn, overTLS bool) *link {
	conn.SetReadLimit(readLimit)
	l := &link{ws: conn, cork: cork, overTLS: overTLS}
	if cork != nil && !overTLS {
		if pending, ok := cork.takeOver(); ok {
			l.frames = wsframe.NewReader(pending, cork.Conn, readLimit, cork.control)
		}
	}
	return l
}

// run serves each connection and reconnects after it ends, until Close.
func (s *Stream) run(conn *link) {
	defer s.shutdown()
	backoff := s.c.opts.MinBackoff
	var dialErr error
	for {
		if conn != nil {
			live, err := s.serve(conn)
			if live {
				backoff = s.c.opts.MinBackoff
			}
			if s.isClosed() {
				return
			}
			s.setState(Connecting, err)
		}
		// Half the delay fixed, half random: clients dropped together do
		// not come back together.
		d := backoff/2 + mrand.N(backoff/2+1)
		var rerr *Error
		if errors.As(dialErr, &rerr) && rerr.RetryAfter > d {
			d = rerr.RetryAfter
		}
		select {
		case <-s.closed:
			return
		case <-time.After(d):
		}
		backoff = min(backoff*2, s.c.opts.MaxBackoff)
		conn, dialErr = s.dial(s.ctx)
		if dialErr != nil {
			conn = nil
			if s.isClosed() {
				return
			}
			s.nextBase()
			s.setState(Connecting, dialErr)
		}
	}
}

func (s *Stream) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// setState records and announces a state change.
func (s *Stream) setState(st State, err error) {
	s.mu.Lock()
	s.state = st
	cur := s.cursor
	s.mu.Unlock()
	s.emit(Event{State: &StateChange{State: st, Cursor: cur, Err: err}})
}

// emit delivers an event, waiting while Events is full, unless the stream
// closes.
func (s *Stream) emit(e Event) bool {
	select {
	case s.events <- e:
		return true
	case <-s.closed:
		return false
	}
}

// serve runs one connection: it queues the outbox again, starts the writer,
// and reads until the socket ends. live reports whether the backlog was
// done on it.
func (s *Stream) serve(l *link) (live bool, err error) {
	conn := l.ws
	wake := make(chan struct{}, 1)
	s.mu.Lock()
	s.conn = conn
	s.wake = wake
	s.wq = nil
	for _, o := range s.order {
		o.retry = false // sent now
		s.wq = append(s.wq, o.frame)
	}
	for _, r := range s.reqs {
		s.wq = append(s.wq, r.frame)
	}
	s.mu.Unlock()
	if s.isClosed() {
		conn.CloseNow()
	}
	s.setState(Connected, nil)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(l, wake)
	}()
	wake <- struct{}{}

	// One buffer for every frame of the connection: handle keeps nothing
	// of it, but copies through k what it keeps.
	var (
		buf []byte
		k   keeper
	)
	for {
		buf, err = l.readFrame(buf[:0])
		if err != nil {
			break
		}
		if s.handle(buf, &k) {
			live = true
		}
	}
	conn.CloseNow()
	s.mu.Lock()
	s.conn, s.wake, s.wq = nil, nil, nil
	s.mu.Unlock()
	close(wake)
	<-writerDone
	return live, err
}

// readFrame reads the next data message into buf, grown as needed.
func (l *link) readFrame(buf []byte) ([]byte, error) {
	if l.frames != nil {
		buf, err := l.frames.Next(buf)
		if err == nil {
			return buf, nil
		}
		var cf *wsframe.CloseFrame
		if errors.As(err, &cf) {
			// As the library reports it.
			err = websocket.CloseError{Code: websocket.StatusCode(cf.Code), Reason: cf.Reason}
			if cf.Code == 0 {
				err = websocket.CloseError{Code: websocket.StatusNoStatusRcvd}
			}
		}
		return buf, err
	}
	_, r, err := l.ws.Reader(context.Background())
	if err != nil {
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// writeLoop writes queued frames to one connection in order: each batch
// of frames queued meanwhile in one system call, when the socket allows.
func (s *Stream) writeLoop(l *link, wake chan struct{}) {
	conn := l.ws
	for range wake {
		for {
			s.mu.Lock()
			if s.conn != conn || len(s.wq) == 0 {
				s.mu.Unlock()
				break
			}
			batch := s.wq
			s.wq = nil
			s.mu.Unlock()
			if err := l.writeBatch(batch); err != nil {
				conn.CloseNow()
				return
			}
		}
	}
}

// writeBatch writes frames, in one system call when the socket is a
// corkConn.
func (l *link) writeBatch(frames [][]byte) error {
	if l.cork != nil && !l.overTLS {
		l.cork.cork()
		for _, b := range frames {
			l.cork.gatherText(b)
		}
		return l.cork.uncork()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l.cork != nil {
		l.cork.cork()
	}
	var err error
	for _, b := range frames {
		if err = l.ws.Write(ctx, websocket.MessageText, b); err != nil {
			break
		}
	}
	if l.cork != nil {
		if err2 := l.cork.uncork(); err == nil {
			err = err2
		}
	}
	return err
}

// write queues a frame for the current connection, if any. s.mu is held.
func (s *Stream) write(b []byte) {
	if s.conn == nil {
		return
	}
	s.wq = append(s.wq, b)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// inFrame is any frame the server sends.
type inFrame struct {
	Type           string     `json:"type"`
	Ref            string     `json:"ref"` // may alias the read buffer (parseFrame)
	Update         *Update    `json:"update"`
	Cursor         int64      `json:"cursor"`
	Message        *Message   `json:"message"`
	ReadSeq        int64      `json:"read_seq"`
	RawError       *wireError `json:"error"`
	ConversationID string     `json:"conversation_id"`
	From           string     `json:"from"`
	InStream       bool       `json:"in_stream"` // an ack in the place of its message's update
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handle acts on one frame, b, which the next frame overwrites; it reports
// whether the frame was ready.
func (s *Stream) handle(b []byte, k *keeper) (ready bool) {
	f, err := parseFrame(unsafe.String(unsafe.SliceData(b), len(b)), k)
	if err != nil {
		return false // not ours to judge; the server speaks JSON
	}
	switch f.Type {
	case "update":
		if f.Update == nil {
			return false
		}
		s.mu.Lock()
		if f.Update.Cursor <= s.cursor {
			s.mu.Unlock()
			return false // seen already
		}
		s.cursor = f.Update.Cursor
		s.mu.Unlock()
		s.emit(Event{Update: f.Update})
	case "ready":
		s.mu.Lock()
		s.cursor = max(s.cursor, f.Cursor)
		s.mu.Unlock()
		s.setState(Live, nil)
		return true
	case "ack":
		s.mu.Lock()
		// An ack in the stream is also the update at its cursor.
		var u *Update
		if f.InStream && f.Message != nil && f.Cursor > s.cursor {
			s.cursor = f.Cursor
			u = &Update{Cursor: f.Cursor, Type: "message", Message: f.Message}
		}
		if o, ok := s.outbox[f.Ref]; ok && f.Message != nil {
			s.resolve(o, &Sent{Message: *f.Message, Cursor: f.Cursor}, nil)
		} else if r, ok := s.reqs[f.Ref]; ok {
			delete(s.reqs, f.Ref)
			r.readSeq = f.ReadSeq
			close(r.done)
		}
		s.mu.Unlock()
		if u != nil {
			s.emit(Event{Update: u})
		}
	case "error":
		e := &Error{Code: "internal", Message: "the server sent an error without details"}
		if f.RawError != nil {
			e = &Error{Code: f.RawError.Code, Message: f.RawError.Message}
		}
		s.mu.Lock()
		if o, ok := s.outbox[f.Ref]; ok {
			if e.Retryable() {
				s.retryLater(o)
			} else {
				s.resolve(o, nil, e)
			}
		} else if r, ok := s.reqs[f.Ref]; ok {
			delete(s.reqs, f.Ref)
			r.err = e
			close(r.done)
		}
		s.mu.Unlock()
	case "typing":
		s.emit(Event{Typing: &Typing{ConversationID: f.ConversationID, From: f.From}})
	}
	return false
}

// resolve takes o out of the outbox with its result. s.mu is held.
func (s *Stream) resolve(o *Outgoing, sent *Sent, err error) {
	delete(s.outbox, o.ClientID)
	if len(s.order) > 0 && s.order[0] == o {
		// Answers come mostly in send order: no copying then.
		s.order[0] = nil
		s.order = s.order[1:]
	} else {
		for i, x := range s.order {
			if x == o {
				s.order = append(s.order[:i], s.order[i+1:]...)
				break
			}
		}
	}
	o.sent, o.err = sent, err
	close(o.done)
	select {
	case s.room <- struct{}{}:
	default:
	}
}

// retryLater sends o again after a delay that grows with its failures.
// The messages refused meanwhile go with it, in the order they were handed
// over: one timer per message would resend a refused burst in the order
// its timers fire, and the server would store it so. s.mu is held.
func (s *Stream) retryLater(o *Outgoing) {
	o.tries++
	o.retry = true
	if s.retryDue {
		return
	}
	s.retryDue = true
	d := min(s.c.opts.MinBackoff<<min(o.tries, 10), s.c.opts.MaxBackoff)
	d = d/2 + mrand.N(d/2+1)
	time.AfterFunc(d, s.flushRetries)
}

// flushRetries sends again, in outbox order, the messages due for a retry.
func (s *Stream) flushRetries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryDue = false
	for _, o := range s.order {
		if o.retry {
			o.retry = false
			s.write(o.frame)
		}
	}
}

// Send puts a message in the outbox and returns at once, or waits while
// the outbox is full. The message is sent whenever the stream is connected
// and resent with the same client_id after every reconnect until the
// server answers; a retryable error (unavailable, rate_limited, internal)
// sends it again later, any other resolves it. meta is a JSON object or nil.
func (s *Stream) Send(ctx context.Context, conversationID, body string, meta any) (*Outgoing, error) {
	cid := newClientID()
	var mb []byte
	if meta != nil {
		var err error
		if mb, err = json.Marshal(meta); err != nil {
			return nil, fmt.Errorf("switchboard: encoding the message: %w", err)
		}
	}
	b := appendSendFrame(make([]byte, 0, sendFrameSize(cid, conversationID, cid, body, mb)), cid, conversationID, cid, body, mb)
	o := &Outgoing{ClientID: cid, ConversationID: conversationID, frame: b, done: make(chan struct{})}
	for {
		s.mu.Lock()
		if s.isDown || s.isClosed() {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if len(s.outbox) < s.c.opts.MaxOutbox {
			s.outbox[cid] = o
			s.order = append(s.order, o)
			s.write(b)
			s.mu.Unlock()
			return o, nil
		}
		s.mu.Unlock()
		select {
		case <-s.room:
		case <-s.closed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// newClientID returns a random client id of 96 bits. Ids need to be
// unique, not secret, so they come from the runtime's generator (ChaCha8,
// seeded from the system's entropy) rather than a crypto/rand read, a
// system call, per send.
func newClientID() string {
	var id [12]byte
	binary.LittleEndian.PutUint64(id[:], mrand.Uint64())
	binary.LittleEndian.PutUint32(id[8:], mrand.Uint32())
	return hex.EncodeToString(id[:])
}

// Pending returns how many sends await their answer.
func (s *Stream) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.outbox)
}

// Read moves the user's read position in a conversation to seq, over the
// socket (sent again after a reconnect until answered), and returns where
// it stands.
func (s *Stream) Read(ctx context.Context, conversationID string, seq int64) (int64, error) {
	s.mu.Lock()
	if s.isDown || s.isClosed() {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	s.nextID++
	ref := "r" + strconv.FormatUint(s.nextID, 10)
	b, _ := json.Marshal(map[string]any{"type": "read", "ref": ref, "conversation_id": conversationID, "seq": seq})
	r := &request{frame: b, done: make(chan struct{})}
	s.reqs[ref] = r
	s.write(b)
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.readSeq, r.err
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.reqs, ref)
		s.mu.Unlock()
		return 0, ctx.Err()
	}
}

// Typing tells the conversation's other members that the user is typing,
// if the stream is connected now; typing notices are never queued.
func (s *Stream) Typing(conversationID string) error {
	b, _ := json.Marshal(map[string]any{"type": "typing", "conversation_id": conversationID})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDown || s.isClosed() {
		return ErrClosed
	}
	s.write(b)
	return nil
}

// shutdown resolves what is left with ErrClosed and closes Events.
func (s *Stream) shutdown() {
	s.mu.Lock()
	s.isDown = true
	for len(s.order) > 0 {
		s.resolve(s.order[0], nil, ErrClosed)
	}
	for ref, r := range s.reqs {
		delete(s.reqs, ref)
		r.err = ErrClosed
		close(r.done)
	}
	s.state = Closed
	s.mu.Unlock()
	close(s.done)
	// Events is closed last, and only here, so a reader ranging over it
	// ends; emit never sends after this because run has returned.
	select {
	case s.events <- Event{State: &StateChange{State: Closed, Cursor: s.Cursor()}}:
	default:
	}
	close(s.events)
}
