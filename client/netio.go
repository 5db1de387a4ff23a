package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/wsframe"
)

// corkConn is the socket under a stream's WebSocket. Uncorked it passes
// writes through (control frames the WebSocket library sends on its own);
// corked, it gathers them, and uncork writes them with one system call:
// the stream's writer corks around each batch of queued frames.
type corkConn struct {
	net.Conn

	mu     sync.Mutex // guards the fields below and writes to Conn
	corked bool
	buf    []byte
	keys   *rand.ChaCha8 // masking keys, seeded from crypto/rand
	// While tapping, every byte read is kept too: the handshake's
	// response, and the first frames if they came with it (takeOver).
	tapping bool
	tap     []byte
}

func (c *corkConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if c.tapping {
		c.tap = append(c.tap, p[:n]...)
		if len(c.tap) > maxTap {
			// Not a handshake's response: the stream will read through
			// the library, which has every byte anyway.
			c.tapping, c.tap = false, nil
		}
	}
	c.mu.Unlock()
	return n, err
}

// maxTap bounds the bytes a tap keeps.
const maxTap = 64 << 10

// startTap starts keeping what is read: the stream's handshake is about to
// be written on c.
func (c *corkConn) startTap() {
	c.mu.Lock()
	c.tapping, c.tap = true, nil
	c.mu.Unlock()
}

// takeOver ends the tap once the handshake is done and returns the bytes
// read past the response's header, which belong to the first frames, so
// that the stream can read its frames from the socket itself. ok is false
// when the tap does not hold the header (the stream then reads through
// the WebSocket library).
func (c *corkConn) takeOver() (pending []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tap := c.tap
	c.tapping, c.tap = false, nil
	// A 101 response has no body: its header ends the response.
	end := bytes.Index(tap, []byte("\r\n\r\n"))
	if end < 0 || !bytes.HasPrefix(tap, []byte("HTTP/1.1 101 ")) {
		return nil, false
	}
	return tap[end+4:], true
}

// corkWriteTimeout bounds the write of one batch.
const corkWriteTimeout = 30 * time.Second

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// gatherText adds p to the gathered batch as one masked text frame; the
// cork must be on. The stream's writer frames its data itself, as the
// server's sessions do, rather than through the WebSocket library, whose
// Write takes two locks, a context timer and a random read per frame. The
// library writes only control frames, each whole in one Write, so frames
// never interleave.
func (c *corkConn) gatherText(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		panic("client: gatherText without cork")
	}
	c.buf = wsframe.AppendMaskedText(c.buf, p, c.maskKey())
}

// maskKey returns the next masking key. c.mu is held.
func (c *corkConn) maskKey() (key [4]byte) {
	if c.keys == nil {
		var seed [32]byte
		crand.Read(seed[:])
		c.keys = rand.NewChaCha8(seed)
	}
	binary.LittleEndian.PutUint32(key[:], uint32(c.keys.Uint64()))
	return key
}

// control writes a control frame (a pong, the close echo) for the stream's
// frame reader: gathered with the batch when corked, at once otherwise.
// Frames are written whole under c.mu, so they never interleave.
func (c *corkConn) control(op byte, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = wsframe.AppendMasked(c.buf, op, p, c.maskKey())
		return nil
	}
	c.Conn.SetWriteDeadline(time.Now().Add(corkWriteTimeout))
	_, err := c.Conn.Write(wsframe.AppendMasked(nil, op, p, c.maskKey()))
	c.Conn.SetWriteDeadline(time.Time{})
	return err
}

// uncork writes what was gathered.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	c.Conn.SetWriteDeadline(time.Now().Add(corkWriteTimeout))
	_, err := c.Conn.Write(c.buf)
	c.Conn.SetWriteDeadline(time.Time{})
	if cap(c.buf) > 64<<10 {
		c.buf = nil // a rare large batch does not stay pinned
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// corkingTransport returns a copy of rt whose connections are corkConns,
// or rt itself when it is not an *http.Transport (nil: the default) or
// dials TLS itself: streams over it then write frame by frame.
func corkingTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	tr, ok := rt.(*http.Transport)
	if !ok || tr.DialTLSContext != nil || tr.DialTLS != nil || tr.Dial != nil {
		return rt
	}
	tr = tr.Clone()
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &corkConn{Conn: nc}, nil
	}
	return tr
}

// traceCork returns a context whose request reports, in *cc, the corkConn
// it ran on, if it ran on one, and in *overTLS whether TLS runs over it:
// the connection is known only once the transport picked it (a fresh one,
// or one kept alive).
func traceCork(ctx context.Context, cc **corkConn, overTLS *bool) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			nc := info.Conn
			if t, ok := nc.(*tls.Conn); ok {
				nc = t.NetConn()
				*overTLS = true
			}
			*cc, _ = nc.(*corkConn)
			if *cc != nil && !*overTLS {
				(*cc).startTap()
			}
		},
	})
}
