// Package wsframe appends WebSocket text frames (RFC 6455 section 5.2) for
// the writers that frame their data themselves instead of through the
// WebSocket library, whose write path takes two locks, and on a client a
// context timer and a random read, per frame: the server's sessions, which
// send unmasked frames, and the Go client's streams, which mask theirs as
// a client must. Reader reads a server's frames for the Go client. The
// server's session reads its client's frames itself (internal/ws), with
// the same ReadHeader, CheckData and ParseClose, so that both ends judge
// frames by one reading of the RFC.
package wsframe

import "encoding/binary"

// AppendText appends one final, unmasked text frame whose payload is the
// parts, in order: a writer may render a frame from pieces it shares with
// other frames without joining them first.
func AppendText(b []byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b = appendHeader(b, OpText, n, 0)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Payload returns the payload of b, one whole unmasked frame.
func Payload(b []byte) []byte {
	switch b[1] & 0x7f {
	case 126:
		return b[4:]
	case 127:
		return b[10:]
	}
	return b[2:]
}

// AppendMaskedText appends p as one final text frame masked with key,
// which must be one the peer cannot predict (section 10.3).
func AppendMaskedText(b, p []byte, key [4]byte) []byte {
	return AppendMasked(b, OpText, p, key)
}

// AppendMasked appends p as one final frame of opcode op masked with key:
// a client's data or control frame.
func AppendMasked(b []byte, op byte, p []byte, key [4]byte) []byte {
	b = append(appendHeader(b, op, len(p), 0x80), key[:]...)
	start := len(b)
	b = append(b, p...)
	Mask(b[start:], binary.LittleEndian.Uint32(key[:]))
	return b
}

// Append appends p as one final, unmasked frame of opcode op: a server's
// control frame.
func Append(b []byte, op byte, p []byte) []byte {
	return append(appendHeader(b, op, len(p), 0), p...)
}

// appendHeader appends the header of a final text frame of n bytes, up to
// the masking key; maskBit is 0x80 for a masked frame.
func appendHeader(b []byte, op byte, n int, maskBit byte) []byte {
	b = append(b, 0x80|op) // FIN, opcode
	switch {
	case n < 126:
		return append(b, maskBit|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, maskBit|126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, maskBit|127), uint64(n))
}

// Mask XORs a frame's payload p with key repeated, eight bytes at a time:
// it masks a payload, and unmasks a masked one.
// The key is its 4 bytes read little endian, as Header holds it.
func Mask(p []byte, key uint32) {
	k := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k)
	}
	for ; i < len(p); i++ {
		p[i] ^= byte(key >> (8 * (i & 3)))
	}
}
