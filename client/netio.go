package client

import (
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

	mu     sync.Mutex // guards the 3 following fields and writes to Conn
	corked bool
	buf    []byte
	keys   *rand.ChaCha8 // masking keys, seeded from crypto/rand
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
	if c.keys == nil {
		var seed [32]byte
		crand.Read(seed[:])
		c.keys = rand.NewChaCha8(seed)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], uint32(c.keys.Uint64()))
	c.buf = wsframe.AppendMaskedText(c.buf, p, key)
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
		},
	})
}
