package wsframe

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Opcodes (RFC 6455 section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xa
)

// ErrProtocol is a frame the peer may not send (a server's, for Reader; a
// client's, for the server's session); the reader's caller closes the
// connection.
var ErrProtocol = errors.New("wsframe: protocol error")

// ErrTooBig is a message over the reader's limit.
var ErrTooBig = errors.New("wsframe: message too big")

// A CloseFrame is the close frame the peer sent (section 5.5.1); Code is 0
// when the frame held none (1005, "no status received").
type CloseFrame struct {
	Code   int
	Reason string
}

func (c *CloseFrame) Error() string {
	return fmt.Sprintf("wsframe: closed by the peer: %d %q", c.Code, c.Reason)
}

// A Reader reads the messages of a server's frames from a byte stream, as
// a client does: frames must be unmasked. It answers pings through Control
// and ends at the peer's close frame, which it echoes.
type Reader struct {
	r *bufio.Reader
	// Limit bounds one message's payload, in bytes.
	Limit int
	// Control writes a control frame (a pong, the close echo), masked as a
	// client must. It runs on the reading goroutine.
	Control func(op byte, payload []byte) error
}

// NewReader returns a Reader of the bytes pending (already read from the
// connection, in order) followed by those of r.
func NewReader(pending []byte, r io.Reader, limit int, control func(op byte, payload []byte) error) *Reader {
	if len(pending) > 0 {
		r = io.MultiReader(&onceReader{b: pending}, r)
	}
	return &Reader{r: bufio.NewReaderSize(r, 32<<10), Limit: limit, Control: control}
}

// onceReader reads b, then ends; unlike bytes.Reader it drops b once read.
type onceReader struct{ b []byte }

func (o *onceReader) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, o.b)
	if o.b = o.b[n:]; len(o.b) == 0 {
		o.b = nil
	}
	return n, nil
}

// Next appends the payload of the next data message (text or binary,
// joined from its fragments) to buf. It returns a *CloseFrame when the
// peer closed, ErrProtocol or ErrTooBig for frames no server may send, or
// the stream's error.
func (r *Reader) Next(buf []byte) ([]byte, error) {
	inMessage := false
	for {
		h, err := ReadHeader(r.r, false)
		if err != nil {
			return buf, err
		}
		if h.Op >= OpClose {
			if err := r.control(h); err != nil {
				return buf, err
			}
			continue
		}
		if err := CheckData(h.Op, inMessage); err != nil {
			return buf, err
		}
		inMessage = true
		if room := r.Limit - len(buf); room < 0 || h.Len > uint64(room) {
			return buf, ErrTooBig
		}
		start := len(buf)
		buf = append(buf, make([]byte, h.Len)...)
		if _, err := io.ReadFull(r.r, buf[start:]); err != nil {
			return buf[:start], Unexpected(err)
		}
		if h.Fin {
			return buf, nil
		}
	}
}

// control acts on a control frame: a ping is answered, a pong ignored,
// and a close frame echoed and returned as a *CloseFrame.
func (r *Reader) control(h Header) error {
	p, err := r.r.Peek(int(h.Len)) // at most 125 bytes: ReadHeader checked
	if err != nil {
		return Unexpected(err)
	}
	r.r.Discard(len(p))
	switch h.Op {
	case OpPing:
		return r.Control(OpPong, p)
	case OpPong:
		return nil
	}
	cf := ParseClose(p)
	if errors.Is(cf, ErrProtocol) {
		return cf
	}
	// Echo the code, as the closing handshake asks (5.5.1); the caller
	// then drops the connection.
	if err := r.Control(OpClose, p[:min(len(p), 2)]); err != nil {
		return err
	}
	return cf
}

// Unexpected reports a stream that ended inside a frame as such: the
// error of a read that needed the rest of a frame.
func Unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
