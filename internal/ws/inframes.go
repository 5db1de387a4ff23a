package ws

import (
	"bufio"
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
// *wsframe.CloseFrame error). Between messages it lets the socket report idleness
// (errIdle, see sock).
func (fr *frameReader) next(ctl *[125]byte) (op byte, data, payload []byte, err error) {
	for {
		// Only before a message's first frame, and with nothing read
		// ahead: a parked session starts over with a new buffer, and the
		// socket must stand at a frame boundary. The socket clears it as
		// soon as it hands out a byte.
		fr.idleOK.Store(fr.op == 0 && fr.r.Buffered() == 0)
		h, err := wsframe.ReadHeader(fr.r, true)
		if err != nil {
			return 0, nil, nil, err
		}
		if h.Op >= wsframe.OpClose {
			p := ctl[:h.Len]
			if _, err := io.ReadFull(fr.r, p); err != nil {
				return 0, nil, nil, wsframe.Unexpected(err)
			}
			wsframe.Mask(p, h.Key)
			if h.Op == wsframe.OpClose {
				return h.Op, nil, nil, wsframe.ParseClose(p)
			}
			return h.Op, nil, p, nil
		}
		if err := wsframe.CheckData(h.Op, fr.op != 0); err != nil {
			return 0, nil, nil, err
		}
		if h.Op != wsframe.OpContinuation {
			fr.op = h.Op
		}
		if fr.bp == nil {
			fr.bp = readBufs.Get().(*[]byte)
		}
		buf := *fr.bp
		if room := fr.limit - int64(len(buf)); h.Len > uint64(room) {
			return 0, nil, nil, wsframe.ErrTooBig
		}
		start := len(buf)
		buf = append(buf, make([]byte, h.Len)...)
		*fr.bp = buf
		if _, err := io.ReadFull(fr.r, buf[start:]); err != nil {
			return 0, nil, nil, wsframe.Unexpected(err)
		}
		wsframe.Mask(buf[start:], h.Key)
		if h.Fin {
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
