package ws

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Buffer sizes of a session's socket. On a socket the poller can watch
// (see sock), the read buffers (the library's, used only until the session
// starts, and the session's frameReader) are bufio's minimum: bytes are read
// into a pooled chunk that the session holds only while some of it is
// unread, so an idle session holds none. Elsewhere the read buffer is small
// and lives as long as the session; a frame larger than it is read straight
// into the frame's own buffer. The write buffer is bufio's minimum too:
// every write of a burst goes into a pooled batch buffer (see corker) and
// reaches the socket in one system call, and control frames are small.
const (
	minBufSize   = 16
	readBufSize  = 1 << 10
	readChunk    = 4 << 10
	writeBufSize = minBufSize
)

// idleGrace is how long a session's reading goroutine waits for the next
// message after one before it parks the socket and ends: a busy socket
// keeps its goroutine, and an idle one costs none after this.
const idleGrace = 100 * time.Millisecond

// hijackWriter hands the WebSocket library a socket with our own small
// buffers instead of net/http's 4 KiB ones, and puts a corker between the
// library's writes and the socket.
type hijackWriter struct {
	http.ResponseWriter
	writeTimeout time.Duration
	sock         *sock   // set by Hijack
	cork         *corker // set by Hijack
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("ws: the ResponseWriter cannot be hijacked")
	}
	nc, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	s := newSock(nc)
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent right behind its handshake, which net/http
		// read with the request. They go in front of the socket itself:
		// the WebSocket library resets the reader we return to read from
		// the connection, which would drop them from a reader's buffer.
		b, _ := brw.Reader.Peek(n)
		s.prefix = bytes.Clone(b)
	}
	w.sock = s
	w.cork = &corker{nc: s, timeout: w.writeTimeout}
	size := readBufSize
	if s.raw != nil {
		size = minBufSize
	}
	return s, bufio.NewReadWriter(bufio.NewReaderSize(s, size), bufio.NewWriterSize(w.cork, writeBufSize)), nil
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errIdle is what a sock's Read returns instead of waiting longer, when the
// session's reading goroutine is between messages and no byte came (see
// sock): the session's frameReader returns it without touching its state
// (it comes before the first byte of a frame header), and the session hands
// the socket to the poller and lets its goroutine end.
var errIdle = errors.New("ws: no bytes to read")

// sock is the hijacked connection as the session's frameReader and the
// corker see it. Its reads go through a chunk from a pool, held only while
// part of it is unread. When its reader stands between messages with
// nothing read ahead (idleOK) and no byte comes within idleGrace (or at
// once, while quick), Read returns errIdle instead of waiting on: the
// session then parks the socket (park), and the poller calls onWake, which
// starts a reading goroutine again, once bytes or a hangup arrive. Close
// wakes a parked session too, so that its reading goroutine sees the close
// and tears the session down.
//
// raw and p are nil for a connection the poller cannot watch (no file
// descriptor, or no poller on this system): reads then wait as usual.
type sock struct {
	net.Conn
	raw    syscall.RawConn
	p      *poller
	prefix []byte // bytes read with the handshake, handed out first

	// Used by one reader at a time: the session's reading goroutine.
	chunk *[]byte // pooled; (*chunk)[off:] is unread
	off   int

	// idleOK is set by the session's frame reader when it stands before a
	// message's first frame header with nothing read ahead, so that every
	// byte handed out belonged to whole frames; Read clears it as it hands
	// out more. noIdle is set for good when the session starts closing (it
	// then waits for the peer's close frame) or cannot park.
	idleOK atomic.Bool
	noIdle atomic.Bool
	// quick is set while the session has read no message since it
	// started or was woken: then it parks as soon as nothing is there. A
	// pong, or a peer that connects and stays silent, costs no goroutine
	// for idleGrace.
	quick atomic.Bool

	id     uint64 // the poller's key
	onWake func()

	mu     sync.Mutex // guards the 4 following fields
	closed bool
	parked bool
	known  bool // in the poller's table (until Close)
	added  bool // registered with the poller's epoll instance
}

var sockIDs atomic.Uint64

func newSock(nc net.Conn) *sock {
	s := &sock{Conn: nc, id: sockIDs.Add(1)}
	s.raw, s.p = pollable(nc)
	s.quick.Store(true)
	return s
}

var chunks = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

func (s *sock) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	switch {
	case len(s.prefix) > 0:
		n = copy(p, s.prefix)
		if s.prefix = s.prefix[n:]; len(s.prefix) == 0 {
			s.prefix = nil
		}
	case s.chunk != nil:
		n = copy(p, (*s.chunk)[s.off:])
		if s.off += n; s.off == len(*s.chunk) {
			s.putChunk()
		}
	case s.raw == nil:
		return s.Conn.Read(p)
	default:
		var err error
		if n, err = s.fill(p); err != nil {
			return 0, err
		}
	}
	// The reader has bytes of a frame now: no idleness until it asks
	// again, before the next message, with nothing read ahead.
	if s.idleOK.Load() {
		s.idleOK.Store(false)
	}
	return n, nil
}

// fill reads from the socket into p, or into a chunk it then copies from
// when p is small. When the reader is before a frame header and the
// session may park, it waits for bytes only up to idleGrace, then returns
// errIdle. It returns no bytes with an error.
func (s *sock) fill(p []byte) (int, error) {
	op := readOps.Get().(*readOp)
	defer op.release()
	*op = readOp{s: s, p: p, fn: op.fn,
		mayIdle: s.idleOK.Load() && !s.noIdle.Load(),
		direct:  len(p) >= readChunk,
	}
	op.quick = op.mayIdle && s.quick.Load()
	for {
		err := s.raw.Read(op.fn)
		n, rerr, bp := op.n, op.rerr, op.bp
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if op.armed && !s.noIdle.Load() {
				return 0, errIdle
			}
			// The deadline of an earlier wait for idleness, or the
			// server began closing meanwhile.
			s.SetReadDeadline(time.Time{})
			op.armed = false
			continue
		case err != nil:
		case rerr == syscall.EAGAIN: // quick
			return 0, errIdle
		case rerr != nil:
			err = &net.OpError{Op: "read", Net: s.LocalAddr().Network(), Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
		case n == 0:
			err = io.EOF
		}
		if err != nil {
			if bp != nil {
				chunks.Put(bp)
			}
			return 0, err
		}
		if op.direct {
			return n, nil
		}
		*bp = (*bp)[:n]
		c := copy(p, *bp)
		if c < n {
			s.chunk, s.off = bp, c
		} else {
			*bp = (*bp)[:cap(*bp)]
			chunks.Put(bp)
		}
		return c, nil
	}
}

// readOp is one fill's state, pooled with its callback for RawConn.Read,
// so that a read allocates nothing.
type readOp struct {
	s       *sock
	p       []byte
	fn      func(fd uintptr) bool // op.readable, bound once
	mayIdle bool
	quick   bool // idle at once, without waiting idleGrace
	direct  bool
	armed   bool // the idleness deadline is set

	n    int
	rerr error
	bp   *[]byte // the chunk read into, unless direct
}

var readOps = sync.Pool{New: func() any {
	op := new(readOp)
	op.fn = op.readable
	return op
}}

// release returns op to the pool, holding nothing.
func (op *readOp) release() {
	fn := op.fn
	*op = readOp{fn: fn}
	readOps.Put(op)
}

// readable reads what the socket has. It returns false (wait) when there
// is nothing.
func (op *readOp) readable(fd uintptr) bool {
	dst := op.p
	op.bp = nil
	if !op.direct {
		// Taken only now, so that a reader waiting holds no chunk.
		op.bp = chunks.Get().(*[]byte)
		dst = (*op.bp)[:cap(*op.bp)]
	}
	op.n, op.rerr = readFD(fd, dst)
	if op.rerr != syscall.EAGAIN {
		return true
	}
	if op.bp != nil {
		chunks.Put(op.bp)
		op.bp = nil
	}
	if op.quick {
		return true
	}
	if op.mayIdle && !op.armed && !op.s.noIdle.Load() {
		// Set only when about to wait, so that a busy socket pays nothing
		// for it; a stale one is cleared by fill. Not once the session
		// is closing: it would only wake this read every idleGrace.
		op.s.SetReadDeadline(time.Now().Add(idleGrace))
		op.armed = true
	}
	return false
}

func (s *sock) putChunk() {
	*s.chunk = (*s.chunk)[:cap(*s.chunk)]
	chunks.Put(s.chunk)
	s.chunk, s.off = nil, 0
}

// park hands the socket to the poller, which will call onWake once. It
// returns false when the socket cannot be parked (it is closed, or the
// poller refused it): the caller goes on reading, and waits for bytes.
func (s *sock) park() bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.parked = true
	if !s.known {
		// Under s.mu, so that Close, which takes it out, knows.
		s.p.add(s)
		s.known = true
	}
	s.mu.Unlock()
	if err := s.p.arm(s); err != nil {
		s.mu.Lock()
		woken := !s.parked
		s.parked = false
		s.mu.Unlock()
		// Not when the socket was closed meanwhile, nor again for each
		// session once the poller failed: only epoll's refusals.
		if _, ok := errors.AsType[*os.SyscallError](err); ok {
			logParkFailure(err)
		}
		if woken {
			return true // Close or the poller woke it already: a new reader runs
		}
		s.noIdle.Store(true)
		return false
	}
	return true
}

// errPollerFailed is what the poller's arm returns once it has failed
// (see poller.fail).
var errPollerFailed = errors.New("ws: the poller failed")

// parkFailures counts the parks the poller refused (epoll_ctl: ENOSPC past
// fs.epoll.max_user_watches, ENOMEM); each such session keeps its goroutine.
var parkFailures struct {
	n      atomic.Int64
	logged atomic.Int64 // when one was last logged, in Unix nanoseconds
}

// parkLogEvery bounds how often park failures are logged: they come in
// floods, one per idle session, once the limit is reached.
const parkLogEvery = time.Minute

func logParkFailure(err error) {
	n := parkFailures.n.Add(1)
	now := time.Now().UnixNano()
	last := parkFailures.logged.Load()
	if (last != 0 && now-last < int64(parkLogEvery)) || !parkFailures.logged.CompareAndSwap(last, now) {
		return
	}
	logPollError("ws: cannot park an idle session: it keeps its goroutine (see fs.epoll.max_user_watches)", "err", err, "failures", n)
}

// pollLog is where the process-wide poller reports its failures: the
// logger of the latest Server given one. Nil: discard.
var pollLog atomic.Pointer[slog.Logger]

func logPollError(msg string, args ...any) {
	if l := pollLog.Load(); l != nil {
		l.Error(msg, args...)
	}
}

// wake starts the session reading again if it is parked: from the poller,
// or from Close.
func (s *sock) wake() {
	s.mu.Lock()
	if !s.parked {
		s.mu.Unlock()
		return
	}
	s.parked = false
	s.mu.Unlock()
	s.onWake()
}

// Close closes the socket and wakes the session if it is parked, so that
// its reading goroutine sees the close.
func (s *sock) Close() error {
	s.mu.Lock()
	s.closed = true
	known := s.known
	s.mu.Unlock()
	err := s.Conn.Close()
	s.wake()
	if known {
		s.p.forget(s)
	}
	return err
}

// corker sits under the session's writes. Uncorked, it writes straight to
// the socket (control frames: pongs, pings, the close; and the library's
// handshake answer). Corked, it gathers everything in a pooled
// buffer, which Uncork writes with one system call: the session's writer
// corks around each batch of queued frames.
type corker struct {
	nc      net.Conn
	timeout time.Duration

	mu     sync.Mutex // guards the 2 following fields and writes to nc
	corked bool
	buf    *[]byte
}

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBatch keeps a rare huge batch from pinning its buffer in the pool.
const maxPooledBatch = 256 << 10

func (c *corker) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	return c.write(p)
}

// write writes p to the socket within the timeout. c.mu is held.
func (c *corker) write(p []byte) (int, error) {
	if c.timeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
		defer c.nc.SetWriteDeadline(time.Time{})
	}
	return c.nc.Write(p)
}

// Gather adds f to the gathered batch as one unmasked text frame (RFC
// 6455 section 5.2); the cork must be on. The session's writer frames its
// queued updates and answers itself, rather than through the WebSocket
// library, whose write path takes two channel-based locks per frame.
// Control frames are each written whole in one Write, so frames never
// interleave.
func (c *corker) Gather(f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		panic("ws: Gather without Cork")
	}
	*c.buf = f.appendTo(*c.buf)
}

// Cork starts gathering writes.
func (c *corker) Cork() {
	c.mu.Lock()
	c.corked = true
	c.buf = batchPool.Get().(*[]byte)
	c.mu.Unlock()
}

// Uncork writes what was gathered and returns the buffer to the pool.
func (c *corker) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	b := c.buf
	c.buf = nil
	var err error
	if len(*b) > 0 {
		_, err = c.write(*b)
	}
	if cap(*b) <= maxPooledBatch {
		*b = (*b)[:0]
		batchPool.Put(b)
	}
	return err
}
