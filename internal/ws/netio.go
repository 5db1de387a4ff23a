package ws

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Buffer sizes of a session's socket. The read buffer lives as long as the
// session, so it is small: a frame larger than it is read straight into the
// frame's own buffer. The write buffer is small too, because every write of
// a burst goes into a pooled batch buffer (see corker) and reaches the
// socket in one system call.
const (
	readBufSize  = 1 << 10
	writeBufSize = 256
)

// hijackWriter hands the WebSocket library a socket with our own small
// buffers instead of net/http's 4 KiB ones, and puts a corker between the
// library's writes and the socket.
type hijackWriter struct {
	http.ResponseWriter
	writeTimeout time.Duration
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
	w.cork = &corker{nc: nc, timeout: w.writeTimeout}
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent right behind its handshake, which net/http
		// read with the request. They go in front of the socket itself:
		// the WebSocket library resets the reader we return to read from
		// the connection, which would drop them from a reader's buffer.
		b, _ := brw.Reader.Peek(n)
		nc = &prefixConn{Conn: nc, r: io.MultiReader(bytes.NewReader(bytes.Clone(b)), nc)}
	}
	return nc, bufio.NewReadWriter(bufio.NewReaderSize(nc, readBufSize), bufio.NewWriterSize(w.cork, writeBufSize)), nil
}

// prefixConn is a connection whose reads first return bytes read from it
// before.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Unwrap lets http.ResponseController reach the real writer.
func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// corker sits under the WebSocket library's bufio.Writer. Uncorked, it
// writes straight to the socket (control frames the library sends on its
// own: pongs, pings, close). Corked, it gathers everything in a pooled
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
