package ws

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/deadline"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/wsframe"
)

// opTimeout bounds one send, read or typing call to the Service.
const opTimeout = 30 * time.Second

// maxAhead bounds the live updates a session holds while it waits for a
// missing cursor or replays; past it they are dropped and fetched from the
// store instead.
const maxAhead = 256

// item is one entry of the outgoing queue: a frame, or the request to close
// the socket once the frames before it are written.
type item struct {
	frame // an update has a cursor; other frames but acks have none
	close *closeReq
}

type closeReq struct {
	code   websocket.StatusCode
	reason string
	// withCursor appends the cursor of the last update written to reason.
	withCursor bool
}

// conn is one WebSocket session.
//
// Goroutines: one reads the socket while frames come (read), and ends when
// the socket is idle, handing it to the poller (see sock), which starts
// another once bytes arrive; the one that sees the socket end tears the
// session down. Where the socket cannot be parked, the reader lives as
// long as the session. The writer, the replay/backfill (fill), each
// operation (send, read, typing), the keepalive ping and the shutdown drain
// start on demand and are counted in bg; teardown waits for them. Each of
// them checks dead under mu before it is counted, so none starts after
// teardown began.
type conn struct {
	srv  *Server
	ws   *websocket.Conn
	sock *sock
	cork *corker
	user chat.Address
	// unsubscribe ends the bus subscription; set before reading starts.
	unsubscribe func()

	done chan struct{}  // closed by teardown
	room chan struct{}  // signalled when the writer finished a batch
	sem  chan struct{}  // one token per operation in progress
	bg   sync.WaitGroup // on-demand goroutines
	ops  sync.WaitGroup // operations in progress, for shutdown
	// reqID is the id of the upgrade request (httpapi.RequestID), named by
	// every log line of the session.
	reqID string
	// release gives back the app's connection slot (Service.Connect).
	release func()

	// Used by the reading goroutine only. fr is nil while the session is
	// parked.
	fr           *frameReader
	typingBucket bucket
	badBucket    bucket

	mu       sync.Mutex // guards every field below
	dead     bool       // teardown began
	shutting bool       // Shutdown began: new operations are refused
	closing  bool       // a close is queued or done: nothing more is queued
	// paused is set while the reading goroutine waits for an operation
	// slot (MaxInFlight) instead of reading; pauses counts how often that
	// began. keepalive does not hold a missing pong against the peer when
	// the server itself was not reading it.
	paused bool
	pauses uint64
	// pongWait is closed by the reading goroutine at the next pong, for
	// the keepalive waiting for it. closeSent is set once a close frame
	// is written.
	pongWait  chan struct{}
	closeSent bool

	// serial holds, per conversation with an operation running, the
	// operations waiting their turn.
	serial lanes

	// mergeAcks is the session's choice (?merge_acks=true) that the ack of
	// a send on this socket stand in for the update of the message it
	// stores, in that update's place in the stream, which then is not sent
	// on its own. merging holds the batches of sends being stored.
	mergeAcks bool
	merging   []*sendBatch

	// The stream.
	last     int64   // cursor of the last update queued
	seen     int64   // highest cursor the bus has shown
	ready    bool    // the ready frame is queued
	filling  bool    // fill is running
	ahead    []frame // live updates past last+1, by cursor
	gapTimer *time.Timer
	// forceTimer cuts the socket of a slow client whose close is stuck.
	forceTimer *time.Timer

	// The queue: frames waiting (q*) and being written (b*).
	queue     []item
	qFrames   int
	qBytes    int
	bFrames   int
	bBytes    int
	writing   bool
	written   int64 // cursor of the last update written to the socket
	pingTimer *time.Timer
}

func newConn(s *Server, wc *websocket.Conn, sk *sock, cork *corker, user chat.Address, after int64, mergeAcks bool) *conn {
	c := &conn{
		mergeAcks: mergeAcks,
		srv:       s,
		ws:        wc,
		sock:      sk,
		cork:      cork,
		user:      user,
		done:      make(chan struct{}),
		room:      make(chan struct{}, 1),
		sem:       make(chan struct{}, s.cfg.MaxInFlight),
		last:      after,
		seen:      after,
		written:   after,
	}
	sk.onWake = c.resume
	return c
}

// run is the session: subscribe, start the replay, then read.
func (c *conn) run() {
	// Subscribe before replaying, so that nothing published during the
	// replay is missed: it waits in ahead, or is dropped as already sent.
	c.mu.Lock()
	c.filling = true
	c.mu.Unlock()
	cancel, err := c.srv.bus.Subscribe(c.user, c.onEvent)
	if err != nil {
		c.srv.log.Error("ws: bus subscribe", "err", err, "user", c.user, "request_id", c.reqID)
		c.ws.Close(websocket.StatusTryAgainLater, "bus unavailable; reconnect")
		c.srv.remove(c)
		return
	}
	c.unsubscribe = cancel
	c.mu.Lock()
	c.startBG(c.fill)
	c.pingTimer = time.AfterFunc(c.srv.cfg.PingInterval, c.keepalive)
	c.mu.Unlock()
	c.read()
}

// read reads the socket until it is idle (parked: the goroutine ends) or
// ends (the session is torn down).
func (c *conn) read() {
	if c.readLoop() {
		return
	}
	c.unsubscribe()
	c.mu.Lock()
	c.dead = true
	c.pingTimer.Stop()
	if c.gapTimer != nil {
		c.gapTimer.Stop()
	}
	if c.forceTimer != nil {
		c.forceTimer.Stop()
	}
	c.queue, c.ahead = nil, nil
	c.mu.Unlock()
	close(c.done)
	c.ws.CloseNow()
	c.bg.Wait()
	c.srv.remove(c)
}

// resume is the poller's call when a parked socket has bytes, a hangup or
// was closed: a new goroutine reads.
func (c *conn) resume() {
	c.srv.parked.Add(-1)
	c.sock.quick.Store(true)
	go c.read()
}

// startBG runs f on a goroutine counted in bg. c.mu is held and c.dead is
// false.
func (c *conn) startBG(f func()) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f()
	}()
}

// readBufs holds the buffers messages are read into: a session takes one
// only once a data frame has begun to arrive (frameReader), so an idle one
// holds none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<10); return &b }}

// maxPooledRead keeps a rare large frame's buffer out of the pool.
const maxPooledRead = 64 << 10

// readLoop reads and handles frames. It returns true when it parked the
// idle socket, false when the socket ended.
func (c *conn) readLoop() (parked bool) {
	var ctl [125]byte
	if c.fr == nil {
		c.fr = getFrameReader(c.sock, c.srv.cfg.MaxFrameBytes)
	}
	for {
		// Between messages, when no byte comes (within idleGrace after a
		// message, at once otherwise), the socket's Read says so (errIdle)
		// instead of waiting on.
		op, data, p, err := c.fr.next(&ctl)
		switch {
		case errors.Is(err, errIdle):
			c.srv.parked.Add(1)
			// Given back before the socket is parked: once it is, a new
			// reading goroutine may start at once.
			c.fr.put()
			c.fr = nil
			if c.sock.park() {
				return true
			}
			c.fr = getFrameReader(c.sock, c.srv.cfg.MaxFrameBytes)
			c.srv.parked.Add(-1)
			continue
		case err != nil:
			c.fr.put()
			c.fr = nil
			c.readFailed(err)
			return false
		}
		switch op {
		case wsframe.OpPing:
			c.control(wsframe.OpPong, p)
		case wsframe.OpPong:
			c.mu.Lock()
			if c.pongWait != nil {
				close(c.pongWait)
				c.pongWait = nil
			}
			c.mu.Unlock()
		default:
			c.sock.quick.Store(false) // a message: more may follow soon
			c.handle(op, data)        // keeps nothing of data
			c.fr.release()
		}
	}
}

// readFailed ends the reading on err: it answers the peer's close, or
// closes with the code a bad frame calls for.
func (c *conn) readFailed(err error) {
	var cf *wsframe.CloseFrame
	switch {
	case errors.As(err, &cf):
		// Echo the code, as the closing handshake asks (5.5.1), unless
		// the server began it; a close without one is answered without
		// one (1005 may not be sent, 7.4.1).
		c.sendClose(websocket.StatusCode(cf.Code), "")
	case errors.Is(err, wsframe.ErrTooBig):
		c.sendClose(websocket.StatusMessageTooBig, fmt.Sprintf("a frame may hold at most %d bytes", c.srv.cfg.MaxFrameBytes))
	case errors.Is(err, wsframe.ErrProtocol):
		c.sendClose(websocket.StatusProtocolError, "protocol error")
	default:
		c.srv.log.Debug("ws: read", "user", c.user, "request_id", c.reqID, "err", err)
	}
}

// control writes a control frame (a pong, a close) at once, or with the
// batch being written.
func (c *conn) control(op byte, p []byte) error {
	var b [2 + 125]byte
	_, err := c.cork.Write(wsframe.Append(b[:0], op, p))
	return err
}

// sendClose writes a close frame, once per session.
func (c *conn) sendClose(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	sent := c.closeSent
	c.closeSent = true
	c.mu.Unlock()
	if !sent {
		c.control(wsframe.OpClose, closePayload(code, reason))
	}
}

// closePayload is a close frame's payload: the code, and the reason cut to
// fit a control frame; empty for code 0.
func closePayload(code websocket.StatusCode, reason string) []byte {
	if code == 0 {
		return nil
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return append(p, reason...)
}

// handle answers one client frame.
func (c *conn) handle(opcode byte, data []byte) {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return
	}
	if opcode != wsframe.OpText {
		c.bad("", "binary frames are not accepted; send JSON text frames")
		return
	}
	f, err := parseIn(data)
	if err != nil {
		// On a type error Unmarshal still fills what it could, ref included.
		c.bad(f.Ref, "the frame is not a valid JSON object of the API: "+err.Error())
		return
	}
	switch f.Type {
	case "send":
		c.startOp(f.ConversationID, op{ref: f.Ref, send: &messaging.SendRequest{
			ConversationID: f.ConversationID, ClientID: f.ClientID, Body: f.Body, Meta: f.Meta,
		}})
	case "read":
		c.startOp(f.ConversationID, op{ref: f.Ref, fn: func(ctx context.Context) {
			readSeq, err := c.srv.svc.MarkRead(ctx, c.user, f.ConversationID, f.Seq)
			if err != nil {
				c.sendError(f.Ref, err)
				return
			}
			c.queueFrame(encode(ackReadFrame{Type: "ack", Ref: f.Ref, ReadSeq: readSeq}))
		}})
	case "typing":
		if !c.typingBucket.allow(time.Now(), c.srv.cfg.TypingPerSecond, c.srv.cfg.TypingBurst) {
			return // best effort; see the package doc
		}
		c.startOp("", op{ref: f.Ref, fn: func(ctx context.Context) {
			if err := c.srv.svc.Typing(ctx, c.user, f.ConversationID); err != nil {
				c.sendError(f.Ref, err)
			}
		}})
	case "ping":
		c.queueFrame(encode(pongFrame{Type: "pong", Ref: f.Ref}))
	case "":
		c.bad(f.Ref, `the frame has no "type"; expected send, read, typing or ping`)
	default:
		c.bad(f.Ref, fmt.Sprintf("unknown frame type %q; expected send, read, typing or ping", f.Type))
	}
}

// bad answers a malformed frame, and closes the socket when they come too
// fast.
func (c *conn) bad(ref, msg string) {
	if !c.badBucket.allow(time.Now(), 1, c.srv.cfg.MaxBadFrames) {
		c.closeAfterFlush(websocket.StatusPolicyViolation, "too many malformed frames", false)
		return
	}
	c.queueFrame(encode(errorFrame{Type: "error", Ref: ref, Error: chat.Errorf(chat.InvalidArgument, "%s", msg)}))
}

func (c *conn) sendError(ref string, err error) {
	c.queueFrame(c.errorFrame(ref, err))
}

// errorFrame encodes the answer to a failed operation; an internal error
// is logged.
func (c *conn) errorFrame(ref string, err error) []byte {
	ce := apiError(err)
	if ce.Code == chat.Internal {
		c.srv.log.Error("ws: operation failed", "user", c.user, "request_id", c.reqID, "ref", ref, "err", err)
	}
	return encode(errorFrame{Type: "error", Ref: ref, Error: ce})
}

// op is one operation of a session: a send, or any other call (fn).
type op struct {
	ref  string
	send *messaging.SendRequest
	fn   func(ctx context.Context)
}

// maxSendBatch bounds the sends to one conversation that one call to the
// Service carries.
const maxSendBatch = 64

// sendBatch is a batch of sends being stored, while its acks may stand in
// for updates (mergeAcks). merged[i] is set once ops[i]'s ack is queued in
// its update's place; next is where the next update likely matches, as
// updates come in send order.
type sendBatch struct {
	conv   string
	ops    []op
	merged []bool
	next   int
}

// mergeInto returns the ref of the send in c.merging that stored m, and
// marks its ack as queued, if one did. c.mu is held.
func (c *conn) mergeInto(m *chat.Message) (string, bool) {
	for _, b := range c.merging {
		if b.conv != m.ConversationID {
			continue
		}
		for k := range b.ops {
			i := (b.next + k) % len(b.ops)
			if !b.merged[i] && b.ops[i].send.ClientID == m.ClientID {
				b.merged[i], b.next = true, i+1
				return b.ops[i].ref, true
			}
		}
	}
	return "", false
}

// startOp runs an operation on a goroutine, at most MaxInFlight at once
// per socket (counting those waiting their turn): past that, the reading
// goroutine waits here, and the client's frames wait in TCP buffers.
// Operations with the same non-empty key (a conversation) run one after
// another in the order the client sent them, so that a client pipelining
// sends to a conversation gets them stored in that order; the sends that
// queued while one ran go to the Service together (SendBatch: one store
// write, one publish, and their acks in one socket write). Operations on
// different conversations run in parallel.
func (c *conn) startOp(key string, o op) {
	c.mu.Lock()
	if c.shutting {
		c.mu.Unlock()
		c.sendError(o.ref, chat.Errorf(chat.Unavailable, "the server is shutting down; reconnect and send again"))
		return
	}
	c.ops.Add(1)
	c.mu.Unlock()
	select {
	case c.sem <- struct{}{}:
	default:
		// Backpressure: stop reading until an operation ends. The peer's
		// pongs wait in the socket meanwhile; see keepalive.
		c.mu.Lock()
		c.paused = true
		c.pauses++
		c.mu.Unlock()
		c.sem <- struct{}{}
		c.mu.Lock()
		c.paused = false
		c.mu.Unlock()
	}

	c.mu.Lock()
	if key != "" {
		if q, busy := c.serial.get(key); busy {
			c.serial.set(key, append(q, o))
			c.mu.Unlock()
			return
		}
		c.serial.set(key, nil)
	}
	c.bg.Add(1)
	c.mu.Unlock()
	c.srv.ops.run(func() {
		defer c.bg.Done()
		batch := []op{o}
		for {
			ctx, cancel := deadline.WithTimeout(context.Background(), opTimeout)
			if batch[0].send != nil {
				c.runSends(ctx, batch)
			} else {
				batch[0].fn(ctx)
			}
			cancel()
			for range batch {
				<-c.sem
				c.ops.Done()
			}
			if key == "" {
				return
			}
			c.mu.Lock()
			q, _ := c.serial.get(key)
			if len(q) == 0 {
				c.serial.free(key)
				c.mu.Unlock()
				return
			}
			// The next operation, with the sends right behind it when it
			// is a send.
			n := 1
			if q[0].send != nil {
				for n < len(q) && n < maxSendBatch && q[n].send != nil {
					n++
				}
			}
			batch = append(batch[:0], q[:n]...)
			c.serial.set(key, q[n:])
			c.mu.Unlock()
		}
	})
}

// runSends sends batch (sends to one conversation, in the client's order)
// and queues their answers together.
func (c *conn) runSends(ctx context.Context, batch []op) {
	// On the stack for most batches.
	var reqsOf [8]messaging.SendRequest
	var framesOf [8]frame
	reqs := reqsOf[:0]
	for _, o := range batch {
		reqs = append(reqs, *o.send)
	}
	// The bus may hand this session the updates of the messages before
	// SendBatch returns; with mergeAcks their acks then go in their place.
	var sb *sendBatch
	if c.mergeAcks {
		sb = &sendBatch{conv: reqs[0].ConversationID, ops: batch, merged: make([]bool, len(batch))}
		c.mu.Lock()
		c.merging = append(c.merging, sb)
		c.mu.Unlock()
	}
	results := c.srv.svc.SendBatch(ctx, c.user, reqs)
	if sb != nil {
		c.mu.Lock()
		for i, b := range c.merging {
			if b == sb {
				c.merging = append(c.merging[:i], c.merging[i+1:]...)
				break
			}
		}
		if len(c.merging) == 0 {
			c.merging = nil
		}
		c.mu.Unlock()
	}
	frames := framesOf[:0]
	for i := range results {
		r := &results[i]
		switch {
		case r.Err != nil:
			frames = append(frames, frame{b: c.errorFrame(batch[i].ref, r.Err)})
		case sb == nil || !sb.merged[i]:
			frames = append(frames, frame{b: messageJSON(&r.Sent.Message, r.Sent.MessageJSON), kind: ackOf, ref: batch[i].ref, cursor: r.Sent.Cursor})
		}
	}
	c.mu.Lock()
	for _, f := range frames {
		c.enqueue(item{frame: f})
	}
	c.mu.Unlock()
}

// queueFrame queues a frame that is not an update.
func (c *conn) queueFrame(b []byte) {
	c.mu.Lock()
	c.enqueue(item{frame: frame{b: b}})
	c.mu.Unlock()
}

// enqueue adds to the queue and makes sure a writer runs. A client past the
// queue's bounds is closed as too slow. c.mu is held.
func (c *conn) enqueue(it item) {
	if c.dead || c.closing {
		return
	}
	if c.queue == nil {
		c.queue = getQueue()
	}
	c.queue = append(c.queue, it)
	c.qFrames++
	c.qBytes += it.size()
	if c.qFrames+c.bFrames > c.srv.cfg.QueueFrames || c.qBytes+c.bBytes > c.srv.cfg.QueueBytes {
		// Drop what waits, so that the memory goes at once, and close
		// after the batch being written, if it ever gets written.
		c.queue, c.qFrames, c.qBytes = nil, 0, 0
		c.requestClose(websocket.StatusTryAgainLater, "too slow; reconnect with after=", true)
		// The close frame waits behind a write the client is not taking;
		// give it a moment, then cut the socket.
		c.forceTimer = time.AfterFunc(c.srv.cfg.SlowCloseGrace, func() { c.sock.Close() })
		return
	}
	c.wake()
}

// queuePool keeps the queue slices of sessions that went idle.
var queuePool sync.Pool

// maxPooledQueue bounds the slices kept, in items.
const maxPooledQueue = 1024

func getQueue() []item {
	if q, ok := queuePool.Get().(*[]item); ok {
		return *q
	}
	return make([]item, 0, 16)
}

// putQueue pools q for another session.
func putQueue(q []item) {
	if cap(q) == 0 || cap(q) > maxPooledQueue {
		return
	}
	clear(q) // the frames a dead session left may go
	q = q[:0]
	queuePool.Put(&q)
}

// wake starts the writer unless it runs. c.mu is held.
func (c *conn) wake() {
	if !c.writing && !c.dead {
		c.writing = true
		c.startBG(c.writeLoop)
	}
}

// closeAfterFlush closes the socket with code once the frames queued so far
// are written.
func (c *conn) closeAfterFlush(code websocket.StatusCode, reason string, withCursor bool) {
	c.mu.Lock()
	c.requestClose(code, reason, withCursor)
	c.mu.Unlock()
}

// requestClose queues the close. c.mu is held.
func (c *conn) requestClose(code websocket.StatusCode, reason string, withCursor bool) {
	if c.dead || c.closing {
		return
	}
	c.closing = true
	c.queue = append(c.queue, item{close: &closeReq{code: code, reason: reason, withCursor: withCursor}})
	c.wake()
}

// writeLoop writes the queue in batches, each gathered by the corker into
// one system call, until the queue is empty.
func (c *conn) writeLoop() {
	// Let the goroutines made runnable by the same event (the sends of one
	// store commit) queue their frames first, so that one system call
	// carries more of them.
	runtime.Gosched()
	// The queue's two slices take turns: new frames go into the one the
	// last batch was written from, so a busy session's queue does not
	// grow a new slice for every batch. An idle session keeps neither:
	// they go back to a pool shared by all sessions.
	var spare []item
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 || c.dead {
			c.queue = nil
			c.writing = false
			c.mu.Unlock()
			putQueue(spare)
			putQueue(batch)
			return
		}
		c.queue = spare
		c.bFrames, c.bBytes = c.qFrames, c.qBytes
		c.qFrames, c.qBytes = 0, 0
		c.mu.Unlock()

		var (
			req    *closeReq
			cursor int64
		)
		c.cork.Cork()
		for _, it := range batch {
			if it.close != nil {
				req = it.close
				break
			}
			c.cork.Gather(&it.frame)
			if it.kind != ackOf && it.cursor > 0 { // an update, or an ack in its place
				cursor = it.cursor
			}
		}
		err := c.cork.Uncork()
		clear(batch) // the written frames may go
		spare = batch[:0]

		c.mu.Lock()
		c.bFrames, c.bBytes = 0, 0
		if err == nil && cursor > 0 {
			c.written = cursor
		}
		written := c.written
		if err != nil || req != nil {
			c.closing = true
			c.queue = nil
			c.writing = false
		}
		c.mu.Unlock()
		select {
		case c.room <- struct{}{}:
		default:
		}

		if err != nil {
			c.srv.log.Debug("ws: write", "user", c.user, "request_id", c.reqID, "err", err)
			c.ws.CloseNow()
			return
		}
		if req != nil {
			reason := req.reason
			if req.withCursor {
				reason += strconv.FormatInt(written, 10)
			}
			// The reading goroutine reads the peer's close, which ends the
			// session: reads must wait for it, not report idle. A peer
			// that does not answer is cut off after closeWait.
			c.sock.noIdle.Store(true)
			c.sendClose(req.code, reason)
			c.mu.Lock()
			if !c.dead && c.forceTimer == nil {
				c.forceTimer = time.AfterFunc(closeWait, func() { c.sock.Close() })
			}
			c.mu.Unlock()
			c.sock.wake() // a parked session reads again, and waits
			return
		}
	}
}

// keepalive pings the peer and drops the socket when no pong comes back in
// time. It runs on its timer's goroutine and rearms the timer.
//
// A pong is only seen when the reading goroutine reads it. While that
// goroutine is paused for backpressure (MaxInFlight operations waiting),
// an unanswered ping says nothing about the peer, so it does not count:
// the next ping, once reading has resumed, decides. A half-open peer is
// still caught: the operations end (opTimeout, WriteTimeout) and reading
// resumes.
func (c *conn) keepalive() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.bg.Add(1)
	wasPaused, pauses := c.paused, c.pauses
	c.mu.Unlock()
	defer c.bg.Done()

	err := c.ping()
	if errors.Is(err, errNoPong) {
		c.mu.Lock()
		excused := wasPaused || c.paused || c.pauses != pauses
		c.mu.Unlock()
		if excused {
			c.srv.log.Debug("ws: no pong while reading was paused; not counted", "user", c.user, "request_id", c.reqID)
			err = nil
		}
	}
	if err != nil {
		c.srv.log.Debug("ws: no pong; dropping the socket", "user", c.user, "request_id", c.reqID, "err", err)
		c.ws.CloseNow()
		return
	}
	c.mu.Lock()
	if !c.dead {
		c.pingTimer.Reset(c.srv.cfg.PingInterval)
	}
	c.mu.Unlock()
}

// closeWait is how long the server waits for the peer to answer its close
// frame before it cuts the socket (the library's Close waited as long).
const closeWait = 5 * time.Second

var errNoPong = errors.New("ws: no pong in time")

// ping writes a ping and waits for the next pong, up to PongTimeout.
func (c *conn) ping() error {
	wait := make(chan struct{})
	c.mu.Lock()
	c.pongWait = wait
	c.mu.Unlock()
	if err := c.control(wsframe.OpPing, nil); err != nil {
		return err
	}
	t := time.NewTimer(c.srv.cfg.PongTimeout)
	defer t.Stop()
	select {
	case <-wait:
		return nil
	case <-t.C:
		c.mu.Lock()
		if c.pongWait == wait {
			c.pongWait = nil
		}
		c.mu.Unlock()
		return errNoPong
	}
}

// shutdown lets the operations in progress finish and be answered, then
// closes the socket with 1001 after the frames queued.
func (c *conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.shutting {
		return
	}
	c.shutting = true
	c.startBG(func() {
		c.ops.Wait()
		c.closeAfterFlush(websocket.StatusGoingAway, "server shutting down; reconnect with after=", true)
	})
}

// onEvent is the bus's callback: it must not block.
func (c *conn) onEvent(e bus.Event) {
	if e.Typing != nil {
		c.queueFrame(encode(typingFrame{Type: "typing", ConversationID: e.Typing.ConversationID, From: e.Typing.From}))
		return
	}
	if e.Update == nil {
		return
	}
	// Made before taking the lock: an update already sent (rare) is made
	// for nothing.
	u := messageFrame(e.Update, e.MessageJSON)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.closing {
		return
	}
	c.seen = max(c.seen, u.cursor)
	if u.cursor <= c.last {
		return
	}
	if !c.filling && u.cursor == c.last+1 {
		if m := e.Update.Message; len(c.merging) > 0 && u.kind == updateOf && m.Sender == c.user {
			if ref, ok := c.mergeInto(m); ok {
				u.kind, u.ref = ackUpdateOf, ref
				c.srv.merged.Add(1)
			}
		}
		c.sendUpdate(u)
		c.drainAhead()
		if len(c.ahead) == 0 && c.gapTimer != nil {
			c.gapTimer.Stop()
			c.gapTimer = nil
		}
		return
	}
	c.addAhead(u)
	if !c.filling && c.gapTimer == nil {
		if c.srv.cfg.GapWait < 0 {
			c.startFill()
		} else {
			c.gapTimer = time.AfterFunc(c.srv.cfg.GapWait, c.gapTimeout)
		}
	}
}

// gapTimeout runs when a missing cursor did not arrive within GapWait.
func (c *conn) gapTimeout() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gapTimer = nil
	if c.dead || c.closing || c.filling {
		return
	}
	c.drainAhead()
	if c.seen > c.last {
		c.startFill()
	}
}

// startFill starts backfilling from the store. c.mu is held.
func (c *conn) startFill() {
	if c.dead {
		return
	}
	c.filling = true
	if c.gapTimer != nil {
		c.gapTimer.Stop()
		c.gapTimer = nil
	}
	c.startBG(c.fill)
}

// sendUpdate queues an update, which is the next in cursor order. c.mu is
// held.
func (c *conn) sendUpdate(u frame) {
	c.last = u.cursor
	c.enqueue(item{frame: u})
}

// addAhead keeps u, in cursor order, for when the cursors before it arrive.
// c.mu is held.
func (c *conn) addAhead(u frame) {
	i := sort.Search(len(c.ahead), func(i int) bool { return c.ahead[i].cursor >= u.cursor })
	if i < len(c.ahead) && c.ahead[i].cursor == u.cursor {
		return
	}
	if len(c.ahead) >= maxAhead {
		return // the store has it; seen makes fill fetch it
	}
	c.ahead = append(c.ahead, frame{})
	copy(c.ahead[i+1:], c.ahead[i:])
	c.ahead[i] = u
}

// drainAhead drops held updates already sent and sends those that are now
// next. c.mu is held.
func (c *conn) drainAhead() {
	n := 0
	for _, u := range c.ahead {
		if u.cursor <= c.last {
			n++
			continue
		}
		if u.cursor != c.last+1 {
			break
		}
		c.sendUpdate(u)
		n++
	}
	if n == len(c.ahead) {
		c.ahead = nil
	} else {
		c.ahead = c.ahead[n:]
	}
}

// fill replays the store's updates after the last cursor sent until it has
// caught up with everything the bus has shown, then sends ready (the first
// time) and lets live updates through. It takes a page only when the queue
// has room, so a long backlog streams at the client's pace.
func (c *conn) fill() {
	idle := 0
	for {
		c.mu.Lock()
		if c.dead || c.closing {
			c.mu.Unlock()
			return
		}
		after := c.last
		c.mu.Unlock()

		ctx, cancel := deadline.WithTimeout(context.Background(), opTimeout)
		ups, _, more, err := c.srv.svc.SessionSync(ctx, c.user, after, c.srv.cfg.SyncPage)
		cancel()
		if err != nil {
			c.srv.log.Warn("ws: replay from the store failed; closing", "user", c.user, "request_id", c.reqID, "err", err)
			c.closeAfterFlush(websocket.StatusTryAgainLater, "store unavailable; reconnect with after=", true)
			return
		}
		progressed := false
		for i := range ups {
			if !c.waitRoom() {
				return
			}
			u := frame{b: encodeUpdate(&ups[i], nil), cursor: ups[i].Cursor}
			c.mu.Lock()
			if u.cursor > c.last {
				c.sendUpdate(u)
				progressed = true
			}
			c.mu.Unlock()
		}

		c.mu.Lock()
		c.drainAhead()
		if !more && c.last >= c.seen {
			c.filling = false
			if !c.ready {
				c.ready = true
				c.enqueue(item{frame: frame{b: encode(readyFrame{Type: "ready", Cursor: c.last})}})
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		if progressed || more {
			idle = 0
			continue
		}
		// The bus showed a cursor that the store does not show yet.
		// Give the store a moment; if it never does, let the client
		// start over rather than skip the gap.
		if idle++; idle > 100 {
			c.srv.log.Error("ws: the store does not show a cursor the bus delivered", "user", c.user, "request_id", c.reqID, "cursor", c.seen)
			c.closeAfterFlush(websocket.StatusTryAgainLater, "stream gap; reconnect with after=", true)
			return
		}
		select {
		case <-c.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitRoom waits until the queue is at most half full. It returns false
// when the session ends or closes first.
func (c *conn) waitRoom() bool {
	for {
		c.mu.Lock()
		if c.dead || c.closing {
			c.mu.Unlock()
			return false
		}
		ok := c.qFrames+c.bFrames < c.srv.cfg.QueueFrames/2 && c.qBytes+c.bBytes < c.srv.cfg.QueueBytes/2
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-c.room:
		case <-c.done:
			return false
		}
	}
}

// bucket is a token bucket, used by one goroutine.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) allow(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
