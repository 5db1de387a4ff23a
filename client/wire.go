package client

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unsafe"

	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// Frames are decoded without reflection (package wirejson): a stream
// decodes every update it receives, so this is the client's hot path.

// parseFrame decodes a frame from the server. s may be the stream's read
// buffer, which the next frame overwrites: every string the frame keeps is
// copied through k, except Ref, which handle only looks up. The update and
// message objects are decoded where they stand (wirejson.Walk), so each
// byte is scanned once.
func parseFrame(s string, k *keeper) (f inFrame, err error) {
	if f, ok := parseFast(s, k); ok {
		return f, nil
	}
	return walkFrame(s, k)
}

// walkFrame is parseFrame for any frame.
func walkFrame(s string, k *keeper) (f inFrame, err error) {
	_, err = wirejson.Walk(s, 0, func(key string, at int) (end int, err error) {
		switch key {
		case "update":
			f.Update, end, err = parseUpdate(s, at, k)
			return end, err
		case "message":
			f.Message, end, err = parseMessage(s, at, k)
			return end, err
		}
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch key {
		case "type":
			f.Type, err = k.shared(wirejson.String(v))
		case "ref":
			f.Ref, err = wirejson.String(v) // only looked up: not copied
		case "cursor":
			f.Cursor, err = wirejson.Int(v)
		case "read_seq":
			f.ReadSeq, err = wirejson.Int(v)
		case "in_stream":
			f.InStream = v == "true"
			if !f.InStream && v != "false" {
				err = errors.New("in_stream is not a boolean")
			}
		case "error":
			if v != "null" {
				f.RawError = new(wireError)
				err = json.Unmarshal([]byte(v), f.RawError)
			}
		case "conversation_id":
			f.ConversationID, err = k.shared(wirejson.String(v))
		case "from":
			f.From, err = k.shared(wirejson.String(v))
		}
		return end, err
	})
	return f, err
}

// keeper copies the strings a decoded frame keeps out of the read buffer.
// Those that recur from frame to frame (types, conversation ids, senders)
// are shared, from a small cache indexed by a cheap hash: a comparison
// costs less than a map lookup, and much less than a copy and its garbage.
type keeper struct {
	recent [256]string
}

// shared returns a copy of s, one it made before if s recurs.
func (k *keeper) shared(s string, err error) (string, error) {
	if err != nil || s == "" {
		return s, err
	}
	// Length, the last byte and the middle one: ids of one kind differ
	// towards the end.
	h := (len(s)*31 + int(s[len(s)-1])*7 + int(s[len(s)/2])) & (len(k.recent) - 1)
	if c := k.recent[h]; c == s {
		return c, nil
	}
	c := strings.Clone(s)
	k.recent[h] = c
	return c, nil
}

// copied returns copies of a and b, made in one allocation.
func (k *keeper) copied(a, b string) (string, string) {
	if len(a)+len(b) == 0 {
		return "", ""
	}
	buf := make([]byte, len(a)+len(b))
	copy(buf, a)
	copy(buf[len(a):], b)
	both := unsafe.String(&buf[0], len(buf)) // buf is not written again
	return both[:len(a)], both[len(a):]
}

// isNull reports whether the value at s[at] is null, and the index past it.
func isNull(s string, at int) (bool, int) {
	if strings.HasPrefix(s[at:], "null") {
		return true, at + len("null")
	}
	return false, at
}

// parseUpdate decodes the update object at s[at] and returns the index
// past it.
func parseUpdate(s string, at int, k *keeper) (*Update, int, error) {
	if null, end := isNull(s, at); null {
		return nil, end, nil
	}
	u := new(Update)
	end, err := wirejson.Walk(s, at, func(key string, at int) (end int, err error) {
		if key == "message" {
			u.Message, end, err = parseMessage(s, at, k)
			return end, err
		}
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch key {
		case "cursor":
			u.Cursor, err = wirejson.Int(v)
		case "type":
			u.Type, err = k.shared(wirejson.String(v))
		case "conversation_id":
			u.ConversationID, err = k.shared(wirejson.String(v))
		case "reader":
			u.Reader, err = k.shared(wirejson.String(v))
		case "seq":
			u.Seq, err = wirejson.Int(v)
		case "conversation":
			if v != "null" {
				u.Conversation = new(Conversation)
				err = json.Unmarshal([]byte(v), u.Conversation)
			}
		}
		return end, err
	})
	return u, end, err
}

// parseMessage decodes the message object at s[at] and returns the index
// past it.
func parseMessage(s string, at int, k *keeper) (*Message, int, error) {
	if null, end := isNull(s, at); null {
		return nil, end, nil
	}
	m := new(Message)
	end, err := wirejson.Walk(s, at, func(key string, at int) (int, error) {
		v, end, err := wirejson.Value(s, at)
		if err != nil {
			return 0, err
		}
		switch key {
		case "conversation_id":
			m.ConversationID, err = k.shared(wirejson.String(v))
		case "seq":
			m.Seq, err = wirejson.Int(v)
		case "sender":
			m.Sender, err = k.shared(wirejson.String(v))
		case "client_id":
			m.ClientID, err = wirejson.String(v) // copied below
		case "kind":
			m.Kind, err = k.shared(wirejson.String(v))
		case "body":
			m.Body, err = wirejson.String(v) // copied below
		case "meta":
			m.Meta = json.RawMessage(v)
		case "sent_at":
			var t string
			if t, err = wirejson.String(v); err == nil && t != "" {
				m.SentAt, err = parseTime(t)
			}
		}
		return end, err
	})
	m.ClientID, m.Body = k.copied(m.ClientID, m.Body)
	return m, end, err
}

// sendFrameSize is the size of the send frame of a message whose strings
// need no escapes; escapes grow it past that.
func sendFrameSize(ref, conversationID, clientID, body string, meta []byte) int {
	const fixed = len(`{"type":"send","ref":"","conversation_id":"","client_id":"","body":"","meta":}`)
	return fixed + len(ref) + len(conversationID) + len(clientID) + len(body) + len(meta)
}

// appendSendFrame appends the send frame of a message.
func appendSendFrame(dst []byte, ref, conversationID, clientID, body string, meta []byte) []byte {
	dst = append(dst, `{"type":"send","ref":`...)
	dst = wirejson.AppendString(dst, ref)
	dst = append(dst, `,"conversation_id":`...)
	dst = wirejson.AppendString(dst, conversationID)
	dst = append(dst, `,"client_id":`...)
	dst = wirejson.AppendString(dst, clientID)
	dst = append(dst, `,"body":`...)
	dst = wirejson.AppendString(dst, body)
	if meta != nil {
		dst = append(dst, `,"meta":`...)
		dst = append(dst, meta...)
	}
	return append(dst, '}')
}

// parseFast decodes the frames the server sends most, a message's update
// and a send's ack, by position, as internal/ws and wirejson.AppendMessage
// lay them out: no per-key dispatch, and each value scanned once. ok is
// false for anything else (another frame, a string with escapes or
// non-ASCII, a meta with fields, another layout), which parseFrame then
// walks. What it takes it decodes as the walk does
// (TestParseFastMatchesWalk).
func parseFast(s string, k *keeper) (f inFrame, ok bool) {
	c := scan{s: s, ok: true}
	switch {
	case strings.HasPrefix(s, `{"type":"update",`):
		c.lit(`{"type":"update","update":{"cursor":`)
		u := &Update{Type: "message", Cursor: c.int()}
		c.lit(`,"type":"message","message":`)
		u.Message = c.message(k)
		c.lit(`}}`)
		f = inFrame{Type: "update", Update: u}
	case strings.HasPrefix(s, `{"type":"ack",`):
		c.lit(`{"type":"ack","ref":`)
		f.Type, f.Ref = "ack", c.str()
		c.lit(`,"message":`)
		f.Message = c.message(k)
		c.lit(`,"cursor":`)
		f.Cursor = c.int()
		if strings.HasPrefix(s[min(c.i, len(s)):], `,"in_stream":true`) {
			c.i += len(`,"in_stream":true`)
			f.InStream = true
		}
		c.lit(`}`)
	default:
		return inFrame{}, false
	}
	return f, c.ok && c.i == len(s)
}

// scan reads a frame by position; ok turns false at the first byte not as
// expected, and stays so.
type scan struct {
	s  string
	i  int
	ok bool
}

func (c *scan) lit(l string) {
	if c.ok && strings.HasPrefix(c.s[c.i:], l) {
		c.i += len(l)
	} else {
		c.ok = false
	}
}

// str reads a plain string (wirejson.PlainString); the result aliases s.
func (c *scan) str() string {
	if !c.ok {
		return ""
	}
	v, end, ok := wirejson.PlainString(c.s, c.i)
	if !ok {
		c.ok = false
		return ""
	}
	c.i = end
	return v
}

// int reads a non-negative integer of at most 18 digits, which cannot
// overflow.
func (c *scan) int() int64 {
	var n int64
	j := c.i
	for j < len(c.s) && j-c.i < 19 && '0' <= c.s[j] && c.s[j] <= '9' {
		n = n*10 + int64(c.s[j]-'0')
		j++
	}
	if !c.ok || j == c.i || j-c.i > 18 || (c.s[c.i] == '0' && j-c.i > 1) {
		c.ok = false
		return 0
	}
	c.i = j
	return n
}

// message reads a message as wirejson.AppendMessage writes one whose meta
// is null or empty.
func (c *scan) message(k *keeper) *Message {
	m := new(Message)
	c.lit(`{"conversation_id":`)
	m.ConversationID, _ = k.shared(c.str(), nil)
	c.lit(`,"seq":`)
	m.Seq = c.int()
	c.lit(`,"sender":`)
	m.Sender, _ = k.shared(c.str(), nil)
	c.lit(`,"client_id":`)
	clientID := c.str()
	c.lit(`,"kind":`)
	m.Kind, _ = k.shared(c.str(), nil)
	c.lit(`,"body":`)
	body := c.str()
	c.lit(`,"meta":`)
	meta := "null"
	if strings.HasPrefix(c.s[min(c.i, len(c.s)):], "{}") {
		meta = "{}" // what a send without one gets
	}
	c.lit(meta)
	c.lit(`,"sent_at":`)
	sentAt := c.str()
	c.lit(`}`)
	if !c.ok {
		return nil
	}
	var err error
	if m.SentAt, err = parseTime(sentAt); err != nil {
		c.ok = false
		return nil
	}
	m.ClientID, m.Body = k.copied(clientID, body)
	m.Meta = json.RawMessage(meta) // null too, as encoding/json gives it
	return m
}

// parseTime reads an RFC 3339 time. The server writes UTC, as
// 2006-01-02T15:04:05.999999999Z: that form is read by position, any other
// by time.Parse.
func parseTime(t string) (time.Time, error) {
	if tm, ok := parseUTC(t); ok {
		return tm, nil
	}
	return time.Parse(time.RFC3339, t)
}

// parseUTC reads 2006-01-02T15:04:05Z with 0 to 9 digits of fraction; ok
// is false for any other form or a field out of range.
func parseUTC(t string) (tm time.Time, ok bool) {
	if len(t) < 20 || t[len(t)-1] != 'Z' || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' {
		return time.Time{}, false
	}
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return -1
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	year, month, day := num(t[0:4]), num(t[5:7]), num(t[8:10])
	hour, min, sec := num(t[11:13]), num(t[14:16]), num(t[17:19])
	ns := 0
	switch frac := t[19 : len(t)-1]; {
	case frac == "":
	case len(frac) < 2 || len(frac) > 10 || frac[0] != '.':
		return time.Time{}, false
	default:
		if ns = num(frac[1:]); ns < 0 {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			ns *= 10
		}
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	leap := year%4 == 0 && (year%100 != 0 || year%400 == 0)
	if day > daysIn[month] || (month == 2 && day == 29 && !leap) {
		return time.Time{}, false
	}
	// Seconds computed here: the two calls of time.Date took an eighth of
	// the reading of a frame (BenchmarkParseFrame).
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+min*60+sec)
	return time.Unix(secs, int64(ns)).UTC(), true
}

// daysIn is the most days each month has (February's in a leap year).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// daysFromCivil returns the days from 1970-01-01 to y-m-d of the proleptic
// Gregorian calendar, y >= 0: counted in 400-year eras from a year that
// starts in March, so that a leap day comes last.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400                  // [0, 399]
	doy := (153*((m+9)%12)+2)/5 + d - 1 // [0, 365], from March 1st
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
