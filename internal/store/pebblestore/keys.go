package pebblestore

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// Key prefixes; doc.go lists the layout.
const (
	pApp      = 'a'
	pConv     = 'c'
	pMessage  = 'm'
	pIdem     = 'i'
	pRead     = 'r'
	pUpdate   = 'u'
	pList     = 'l'
	pBlock    = 'b'
	separator = 0x00
)

var be = binary.BigEndian

// The helpers below append to dst so that the writer can reuse one buffer.

func appKey(dst []byte, id string) []byte {
	return append(append(dst, pApp), id...)
}

func convKey(dst []byte, id string) []byte {
	return append(append(dst, pConv), id...)
}

// messagePrefix is the prefix of every message of a conversation.
func messagePrefix(dst []byte, conv string) []byte {
	return append(append(append(dst, pMessage), conv...), separator)
}

func messageKey(dst []byte, conv string, seq int64) []byte {
	return be.AppendUint64(messagePrefix(dst, conv), uint64(seq))
}

func idemKey(dst []byte, conv string, sender chat.Address, clientID string) []byte {
	dst = append(append(append(dst, pIdem), conv...), separator)
	return append(append(append(dst, sender...), separator), clientID...)
}

func readKey(dst []byte, conv string, member chat.Address) []byte {
	return append(append(append(append(dst, pRead), conv...), separator), member...)
}

func updatePrefix(dst []byte, user chat.Address) []byte {
	return append(append(append(dst, pUpdate), user...), separator)
}

func updateKey(dst []byte, user chat.Address, cursor int64) []byte {
	return be.AppendUint64(updatePrefix(dst, user), uint64(cursor))
}

func listPrefix(dst []byte, user chat.Address) []byte {
	return append(append(append(dst, pList), user...), separator)
}

func listKey(dst []byte, user chat.Address, updatedAt int64, conv string) []byte {
	dst = be.AppendUint64(listPrefix(dst, user), ^orderedNanos(updatedAt))
	for i := 0; i < len(conv); i++ {
		dst = append(dst, ^conv[i])
	}
	return append(dst, 0xff)
}

// parseListKey returns the time and conversation id of a list key whose
// prefix (of length n) has been checked.
func parseListKey(key []byte, n int) (updatedAt int64, conv string, err error) {
	rest := key[n:]
	if len(rest) < 9 || rest[len(rest)-1] != 0xff {
		return 0, "", errors.New("pebblestore: malformed list key")
	}
	updatedAt = int64(^be.Uint64(rest) ^ (1 << 63))
	id := make([]byte, len(rest)-9)
	for i := range id {
		id[i] = ^rest[8+i]
	}
	return updatedAt, string(id), nil
}

func blockKey(dst []byte, blocker, blocked chat.Address) []byte {
	return append(append(append(append(dst, pBlock), blocker...), separator), blocked...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// orderedNanos maps a signed time to an unsigned one of the same order.
func orderedNanos(n int64) uint64 { return uint64(n) ^ (1 << 63) }

// nanos encodes t; the zero time, which UnixNano cannot represent, becomes
// MinInt64 and comes back as the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// normTime strips the monotonic reading and the location, so that what a
// write returns equals what later reads decode.
func normTime(t time.Time) time.Time { return fromNanos(nanos(t)) }

// The record of a conversation holds LastSeq and UpdatedAt as of its last
// write (creation, membership change); an append does not rewrite it. The
// conversation's last message, when newer, has the current ones: its seq,
// and its SentAt as UpdatedAt. So an append writes no head record.

// withLastMessage applies the conversation's last message (its key, whose
// prefix of length n has been checked, and value) to c.
func withLastMessage(c *chat.Conversation, key []byte, n int, v []byte) error {
	if len(key) != n+8 || len(v) < 9 || v[0] != 1 {
		return errBadMessage
	}
	if seq := int64(be.Uint64(key[n:])); seq > c.LastSeq {
		c.LastSeq, c.UpdatedAt = seq, fromNanos(int64(be.Uint64(v[1:])))
	}
	return nil
}

// encodeMessage writes m without its conversation id and seq, which are in
// the key: version 1 | sent at i64 | then sender, client id, kind, body and
// meta, each as uvarint length and bytes. A hand-rolled format because
// this is the hot path, and JSON costs several times more.
func encodeMessage(dst []byte, m *chat.Message) []byte {
	dst = append(dst, 1)
	dst = be.AppendUint64(dst, uint64(nanos(m.SentAt)))
	dst = appendString(dst, string(m.Sender))
	dst = appendString(dst, m.ClientID)
	dst = appendString(dst, m.Kind)
	dst = appendString(dst, m.Body)
	dst = binary.AppendUvarint(dst, uint64(len(m.Meta)))
	return append(dst, m.Meta...)
}

var errBadMessage = errors.New("pebblestore: malformed message")

func decodeMessage(v []byte, conv string, seq int64) (chat.Message, error) {
	m := chat.Message{ConversationID: conv, Seq: seq}
	if len(v) < 9 || v[0] != 1 {
		return m, errBadMessage
	}
	m.SentAt = fromNanos(int64(be.Uint64(v[1:])))
	// One string for the text fields, sliced, and one copy for meta: the
	// history and sync reads decode many messages.
	d := decoder{s: string(v[9:])}
	m.Sender = chat.Address(d.str())
	m.ClientID = d.str()
	m.Kind = d.str()
	m.Body = d.str()
	if meta := d.str(); meta != "" {
		m.Meta = []byte(meta)
	}
	if d.bad || d.s != "" {
		return m, errBadMessage
	}
	return m, nil
}

// decoder reads uvarint-prefixed strings (appendString) off s; bad is set
// when s runs short.
type decoder struct {
	s   string
	bad bool
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if len(d.s) == 0 {
			d.bad = true
			return 0
		}
		b := d.s[0]
		d.s = d.s[1:]
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x
		}
	}
	d.bad = true
	return 0
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)) {
		d.bad = true
		return ""
	}
	out := d.s[:n]
	d.s = d.s[n:]
	return out
}

func (d *decoder) int64() int64 {
	if len(d.s) < 8 {
		d.bad = true
		return 0
	}
	var n uint64
	for i := range 8 {
		n = n<<8 | uint64(d.s[i])
	}
	d.s = d.s[8:]
	return int64(n)
}

// encodeConversation writes c whole: version 1 | created at, updated at,
// last seq, each 8 bytes | id, kind, title, creator | member count
// (uvarint) | members. Binary, because every send reads the conversation.
func encodeConversation(dst []byte, c *chat.Conversation) []byte {
	dst = append(dst, 1)
	dst = be.AppendUint64(dst, uint64(nanos(c.CreatedAt)))
	dst = be.AppendUint64(dst, uint64(nanos(c.UpdatedAt)))
	dst = be.AppendUint64(dst, uint64(c.LastSeq))
	dst = appendString(dst, c.ID)
	dst = appendString(dst, c.Kind)
	dst = appendString(dst, c.Title)
	dst = appendString(dst, string(c.Creator))
	dst = binary.AppendUvarint(dst, uint64(len(c.Members)))
	for _, m := range c.Members {
		dst = appendString(dst, string(m))
	}
	return dst
}

var errBadConversation = errors.New("pebblestore: malformed conversation")

func decodeConversation(v []byte) (*chat.Conversation, error) {
	if len(v) < 1 || v[0] != 1 {
		return nil, errBadConversation
	}
	d := decoder{s: string(v[1:])}
	c := &chat.Conversation{}
	c.CreatedAt = fromNanos(d.int64())
	c.UpdatedAt = fromNanos(d.int64())
	c.LastSeq = d.int64()
	c.ID = d.str()
	c.Kind = d.str()
	c.Title = d.str()
	c.Creator = chat.Address(d.str())
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)) {
		return nil, errBadConversation
	}
	c.Members = make([]chat.Address, n)
	for i := range c.Members {
		c.Members[i] = chat.Address(d.str())
	}
	if d.bad || d.s != "" {
		return nil, errBadConversation
	}
	return c, nil
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// Stream entries start with their kind. A key holds one entry, but for a
// run: the entries of messages seq..seq+n-1 of one conversation, at cursors
// key..key+n-1 (messageRun).
const (
	entryMessage      = 'm' // seq u64 | conv id
	entryMessages     = 'M' // seq u64 | n u32 | conv id: a run, n > 1
	entryRead         = 'r' // seq u64 | uvarint len, conv id | reader
	entryConversation = 'c' // conversation (encodeConversation)
)

// encodeMessageRun writes the run of n entries from message seq of conv on;
// a run of one is a plain message entry.
func encodeMessageRun(dst []byte, conv string, seq int64, n int) []byte {
	if n == 1 {
		return append(be.AppendUint64(append(dst, entryMessage), uint64(seq)), conv...)
	}
	dst = be.AppendUint64(append(dst, entryMessages), uint64(seq))
	return append(be.AppendUint32(dst, uint32(n)), conv...)
}

// parseRun reads a message entry or run: its first seq, its number of
// entries and its conversation. ok is false for other kinds.
func parseRun(v []byte) (seq int64, n int, conv []byte, ok bool, err error) {
	switch {
	case len(v) == 0:
		return 0, 0, nil, false, errBadEntry
	case v[0] == entryMessage && len(v) >= 9:
		return int64(be.Uint64(v[1:])), 1, v[9:], true, nil
	case v[0] == entryMessages && len(v) >= 13:
		n := int(be.Uint32(v[9:]))
		if n < 2 {
			return 0, 0, nil, false, errBadEntry
		}
		return int64(be.Uint64(v[1:])), n, v[13:], true, nil
	case v[0] == entryMessage || v[0] == entryMessages:
		return 0, 0, nil, false, errBadEntry
	}
	return 0, 0, nil, false, nil
}

// entryCount returns how many entries (cursors) the stored value v holds.
func entryCount(v []byte) (int, error) {
	_, n, _, ok, err := parseRun(v)
	switch {
	case err != nil:
		return 0, err
	case ok:
		return n, nil
	}
	return 1, nil
}

func encodeReadEntry(dst []byte, conv string, reader chat.Address, seq int64) []byte {
	dst = be.AppendUint64(append(dst, entryRead), uint64(seq))
	return append(appendString(dst, conv), reader...)
}
