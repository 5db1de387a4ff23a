package wsframe

import (
	"bufio"
	"encoding/binary"
)

// Header is a frame's header (section 5.2).
type Header struct {
	Fin bool
	Op  byte
	Len uint64 // the payload's length
	// The masking key of a masked frame, its 4 bytes read little endian
	// (see Mask): a struct of scalars stays in registers.
	Key uint32
}

// MaxHeader is the longest header: 2 bytes, an 8-byte length and a key.
const MaxHeader = 14

// ReadHeader reads a frame's header from r, whose buffer must hold
// MaxHeader bytes; it reads in place, allocating nothing. masked is
// what the peer must do: a client masks every frame, a server none (5.1).
// It returns io.EOF when r ends between frames, io.ErrUnexpectedEOF when
// it ends inside a header, and ErrProtocol for reserved bits (no extension
// is agreed), the wrong masking, a length of 2^63 or more, a reserved
// control opcode, or a control frame that is fragmented or longer than 125
// bytes (5.5).
func ReadHeader(r *bufio.Reader, masked bool) (Header, error) {
	// The first two bytes are judged before waiting for the rest: a peer
	// that breaks the protocol is told at once.
	h, err := r.Peek(2)
	if err != nil {
		if len(h) > 0 {
			err = Unexpected(err)
		}
		return Header{}, err
	}
	if h[0]&0x70 != 0 || (h[1]&0x80 != 0) != masked {
		return Header{}, ErrProtocol
	}
	fh := Header{Fin: h[0]&0x80 != 0, Op: h[0] & 0x0f, Len: uint64(h[1] & 0x7f)}
	size := 2
	switch fh.Len {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if masked {
		size += 4
	}
	if size > 2 {
		if h, err = r.Peek(size); err != nil {
			return Header{}, Unexpected(err)
		}
	}
	switch fh.Len {
	case 126:
		fh.Len = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		if fh.Len = binary.BigEndian.Uint64(h[2:]); fh.Len>>63 != 0 {
			return Header{}, ErrProtocol
		}
	}
	if masked {
		fh.Key = binary.LittleEndian.Uint32(h[size-4:])
	}
	r.Discard(size) // cannot fail: those bytes were peeked
	if fh.Op >= OpClose && (fh.Op > OpPong || !fh.Fin || fh.Len > 125) {
		return Header{}, ErrProtocol
	}
	return fh, nil
}

// CheckData checks a data frame's opcode against the message being read:
// inMessage says that a message's first fragment has come and not its
// last (5.4). Reserved data opcodes and fragments out of place are
// ErrProtocol.
func CheckData(op byte, inMessage bool) error {
	switch {
	case op == OpContinuation && !inMessage, op != OpContinuation && inMessage:
		return ErrProtocol // a fragment out of place
	case op != OpContinuation && op != OpText && op != OpBinary:
		return ErrProtocol // a reserved opcode
	}
	return nil
}

// ParseClose reads a close frame's payload (5.5.1): a *CloseFrame, or
// ErrProtocol for a payload of one byte. A close frame is always an
// error to its reader: the connection ends.
func ParseClose(p []byte) error {
	switch len(p) {
	case 0:
		return &CloseFrame{}
	case 1:
		return ErrProtocol
	}
	return &CloseFrame{Code: int(binary.BigEndian.Uint16(p)), Reason: string(p[2:])}
}
