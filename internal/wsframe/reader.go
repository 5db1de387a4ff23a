package wsframe

import (
	"bufio"
	"encoding/binary"
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
		fin, op, n, err := r.header()
		if err != nil {
			return buf, err
		}
		if op >= OpClose {
			if err := r.control(op, n); err != nil {
				return buf, err
			}
			continue
		}
		switch {
		case op == OpContinuation && !inMessage, op != OpContinuation && inMessage:
			return buf, ErrProtocol // a fragment out of place
		case op != OpContinuation && op != OpText && op != OpBinary:
			return buf, ErrProtocol // a reserved opcode
		}
		inMessage = true
		if room := r.Limit - len(buf); room < 0 || n > uint64(room) {
			return buf, ErrTooBig
		}
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(r.r, buf[start:]); err != nil {
			return buf[:start], Unexpected(err)
		}
		if fin {
			return buf, nil
		}
	}
}

// header reads a frame header.
func (r *Reader) header() (fin bool, op byte, n uint64, err error) {
	h, err := r.take(2)
	if err == io.ErrUnexpectedEOF && r.r.Buffered() == 0 {
		err = io.EOF // between frames
	}
	if err != nil {
		return false, 0, 0, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	if h[0]&0x70 != 0 || h[1]&0x80 != 0 {
		return false, 0, 0, ErrProtocol // reserved bits (no extension is agreed), or a masked frame from a server
	}
	n = uint64(h[1] & 0x7f)
	switch n {
	case 126:
		x, err := r.take(2)
		if err != nil {
			return false, 0, 0, err
		}
		n = uint64(binary.BigEndian.Uint16(x))
	case 127:
		x, err := r.take(8)
		if err != nil {
			return false, 0, 0, err
		}
		if n = binary.BigEndian.Uint64(x); n>>63 != 0 {
			return false, 0, 0, ErrProtocol
		}
	}
	if op >= OpClose && (!fin || n > 125) {
		return false, 0, 0, ErrProtocol // control frames are whole and short (5.5)
	}
	return fin, op, n, nil
}

// take returns the next n bytes (n at most the buffer's size), valid until
// the next read: they are read in place, nothing is allocated.
func (r *Reader) take(n int) ([]byte, error) {
	b, err := r.r.Peek(n)
	if err != nil {
		return nil, Unexpected(err)
	}
	r.r.Discard(n)
	return b, nil
}

// control acts on a control frame of n bytes.
func (r *Reader) control(op byte, n uint64) error {
	p, err := r.take(int(n))
	if err != nil {
		return err
	}
	switch op {
	case OpPing:
		return r.Control(OpPong, p)
	case OpPong:
		return nil
	case OpClose:
		cf := &CloseFrame{}
		switch {
		case n == 1:
			return ErrProtocol
		case n >= 2:
			cf.Code, cf.Reason = int(binary.BigEndian.Uint16(p[:2])), string(p[2:])
		}
		// Echo the code, as the closing handshake asks (5.5.1); the
		// caller then drops the connection.
		if err := r.Control(OpClose, p[:min(n, 2)]); err != nil {
			return err
		}
		return cf
	}
	return ErrProtocol // a reserved control opcode
}

// Unexpected reports a stream that ended inside a frame as such: the
// error of a read that needed the rest of a frame.
func Unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
