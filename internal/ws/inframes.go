package ws

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"

	"github.com/switchboard-chat/switchboard/internal/wsframe"
)

// The session reads its client's frames (RFC 6455 section 5.2) itself,
// rather than through the WebSocket library, whose reader took a lock
// built on a channel, a context and a reader object per message: 4% of the
// pairs benchmark's CPU. It answers pings, notes pongs for the keepalive,
// and answers the close handshake itself; the library only upgrades the
// connection and, at the end, closes it.

// frameReader reads the messages of a client's frames. Its buffer is
// bufio's minimum, which holds any header; payloads are read straight into
// a buffer from readBufs, held while a message is read and handled (the
// socket itself buffers in a pooled chunk, see sock). A parked session
// gives its reader back to a pool, so an idle one holds none.
type frameReader struct {
	r      *bufio.Reader
	idleOK *atomic.Bool // the socket's: set while it may report idleness
	limit  int64
	// The data message being read, across control frames between its
	// fragments: its opcode (0 when none), and its buffer, from readBufs
	// until release.
	op byte
	bp *[]byte
}

// frameReaders keeps the readers of parked sessions, which hold nothing
// then: a session parks only between messages, with nothing buffered.
var frameReaders = sync.Pool{New: func() any { return &frameReader{r: bufio.NewReaderSize(nil, minBufSize)} }}

func getFrameReader(s *sock, limit int64) *frameReader {
	fr := frameReaders.Get().(*frameReader)
	fr.r.Reset(s)
	fr.idleOK, fr.limit = &s.idleOK, limit
	return fr
}

// put gives fr back to the pool. It must hold no message.
func (fr *frameReader) put() {
	fr.release()
	fr.r.Reset(nil)
	*fr = frameReader{r: fr.r}
	frameReaders.Put(fr)
}

// next reads frames until a whole data message, whose payload it returns
// in data, valid until release, or a control frame, whose payload it
// returns in ctl (a ping's, a pong's; a close frame is returned as a
// *closeFrame error). Between messages it lets the socket report idleness
// (errIdle, see sock).
func (fr *frameReader) next(ctl *[125]byte) (op byte, data, payload []byte, err error) {
	for {
		// Only before a message's first frame: a parked session starts
		// over with a new buffer.
		fr.idleOK.Store(fr.op == 0)
		fin, fop, n, key, err := fr.header()
		fr.idleOK.Store(false)
		if err != nil {
			return 0, nil, nil, err
		}
		if fop >= wsframe.OpClose {
			if fop > wsframe.OpPong {
				return 0, nil, nil, wsframe.ErrProtocol // a reserved control opcode
			}
			p := ctl[:n]
			if _, err := io.ReadFull(fr.r, p); err != nil {
				return 0, nil, nil, wsframe.Unexpected(err)
			}
			wsframe.Mask(p, key)
			if fop == wsframe.OpClose {
				return fop, nil, nil, parseClose(p)
			}
			return fop, nil, p, nil
		}
		switch {
		case fop == wsframe.OpContinuation && fr.op == 0, fop != wsframe.OpContinuation && fr.op != 0:
			return 0, nil, nil, wsframe.ErrProtocol // a fragment out of place
		case fop != wsframe.OpContinuation && fop != wsframe.OpText && fop != wsframe.OpBinary:
			return 0, nil, nil, wsframe.ErrProtocol // a reserved opcode
		}
		if fop != wsframe.OpContinuation {
			fr.op = fop
		}
		if fr.bp == nil {
			fr.bp = readBufs.Get().(*[]byte)
		}
		buf := *fr.bp
		if room := fr.limit - int64(len(buf)); n > uint64(room) {
			return 0, nil, nil, wsframe.ErrTooBig
		}
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		*fr.bp = buf
		if _, err := io.ReadFull(fr.r, buf[start:]); err != nil {
			return 0, nil, nil, wsframe.Unexpected(err)
		}
		wsframe.Mask(buf[start:], key)
		if fin {
			op, fr.op = fr.op, 0
			return op, buf, nil, nil
		}
	}
}

// release gives the message's buffer back.
func (fr *frameReader) release() {
	if fr.bp == nil {
		return
	}
	if cap(*fr.bp) <= maxPooledRead {
		*fr.bp = (*fr.bp)[:0]
		readBufs.Put(fr.bp)
	}
	fr.bp = nil
}

// header reads a frame header, which must be masked (5.3).
func (fr *frameReader) header() (fin bool, op byte, n uint64, key [4]byte, err error) {
	h, err := fr.r.Peek(2)
	if err != nil {
		if len(h) > 0 {
			err = wsframe.Unexpected(err)
		}
		return false, 0, 0, key, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	if h[0]&0x70 != 0 || h[1]&0x80 == 0 {
		return false, 0, 0, key, wsframe.ErrProtocol // reserved bits (no extension is agreed), or an unmasked frame
	}
	n = uint64(h[1] & 0x7f)
	size := 2 + 4
	switch n {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if h, err = fr.r.Peek(size); err != nil {
		return false, 0, 0, key, wsframe.Unexpected(err)
	}
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		if n = binary.BigEndian.Uint64(h[2:]); n>>63 != 0 {
			return false, 0, 0, key, wsframe.ErrProtocol
		}
	}
	copy(key[:], h[size-4:])
	fr.r.Discard(size)
	if op >= wsframe.OpClose && (!fin || n > 125) {
		return false, 0, 0, key, wsframe.ErrProtocol // control frames are whole and short (5.5)
	}
	return fin, op, n, key, nil
}

// parseClose reads a close frame's payload (5.5.1).
func parseClose(p []byte) error {
	switch {
	case len(p) == 1:
		return wsframe.ErrProtocol
	case len(p) == 0:
		return &wsframe.CloseFrame{}
	}
	return &wsframe.CloseFrame{Code: int(binary.BigEndian.Uint16(p)), Reason: string(p[2:])}
}
