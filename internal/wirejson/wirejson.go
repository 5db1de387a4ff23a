// Package wirejson encodes and decodes the WebSocket frames of the API on
// the hot path, without reflection: an object walker that hands out each
// field's raw value, decoders for strings and integers, and encoders for
// strings and messages. Anything unusual (escapes, non-ASCII text) falls
// back to encoding/json, so the output and the accepted input are those of
// encoding/json; only the common case is fast.
package wirejson

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// ErrSyntax reports a value that is not the JSON expected.
var ErrSyntax = errors.New("wirejson: malformed JSON")

// Fields calls fn with each member of the JSON object s: its key as
// written (escapes are not decoded; the API's keys have none) and its raw
// value, until fn returns false. Values are skipped over, not validated:
// a field that matters is decoded by its caller (String, Int), and those
// check it. Working on a string lets decoded strings share its memory.
func Fields(s string, fn func(key, val string) bool) error {
	_, err := Walk(s, 0, func(key string, at int) (int, error) {
		val, end, err := Value(s, at)
		if err != nil {
			return 0, err
		}
		if !fn(key, val) {
			return 0, errStop
		}
		return end, nil
	})
	if err == errStop {
		return nil
	}
	return err
}

// errStop ends a Walk early without an error.
var errStop = errors.New("wirejson: stop")

// Walk goes through the members of the JSON object that starts at s[i]
// (after any spaces). It calls fn with each key, as written, and the index
// of its value; fn returns the index just past the value, which it finds
// with Value or by decoding the value itself (a nested Walk), so that a
// nested object is scanned once rather than once per level. Walk returns
// the index just past the object, or fn's first error.
func Walk(s string, i int, fn func(key string, at int) (int, error)) (int, error) {
	i = skipSpace(s, i)
	if i >= len(s) || s[i] != '{' {
		return 0, ErrSyntax
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return 0, ErrSyntax
		}
		end, err := skipString(s, i)
		if err != nil {
			return 0, err
		}
		key := s[i+1 : end-1]
		i = skipSpace(s, end)
		if i >= len(s) || s[i] != ':' {
			return 0, ErrSyntax
		}
		if i, err = fn(key, skipSpace(s, i+1)); err != nil {
			return 0, err
		}
		i = skipSpace(s, i)
		if i >= len(s) {
			return 0, ErrSyntax
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, ErrSyntax
		}
	}
}

// Value returns the raw value that starts at s[i], and the index just past
// it. Like Fields, it skips over the value without validating it.
func Value(s string, i int) (string, int, error) {
	end, err := skipValue(s, i)
	if err != nil {
		return "", 0, err
	}
	return s[i:end], end, nil
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at s[i] == '"'.
func skipString(s string, i int) (int, error) {
	for j := i + 1; ; {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return 0, ErrSyntax
		}
		j += k
		// The quote ends the string unless an odd number of backslashes
		// escapes it.
		n := 0
		for b := j - 1; b > i && s[b] == '\\'; b-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, nil
		}
		j++
	}
}

// skipValue returns the index after the value starting at s[i].
func skipValue(s string, i int) (int, error) {
	if i >= len(s) {
		return 0, ErrSyntax
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				end, err := skipString(s, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, ErrSyntax
	}
	j := i
	for j < len(s) {
		switch s[j] {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			if j == i {
				return 0, ErrSyntax
			}
			return j, nil
		}
		j++
	}
	return j, nil
}

// String decodes a JSON string value; null is "". Without escapes the
// result shares v's memory.
func String(v string) (string, error) {
	if v == "null" {
		return "", nil
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", ErrSyntax
	}
	in := v[1 : len(v)-1]
	for i := plainPrefix(in); i < len(in); i++ {
		if c := in[i]; c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			// Escapes, or UTF-8 to check: encoding/json's rules.
			var out string
			if err := json.Unmarshal([]byte(v), &out); err != nil {
				return "", ErrSyntax
			}
			return out, nil
		}
	}
	return in, nil
}

// Plain reports whether s is all plain bytes: printable ASCII other than a
// quote or a backslash, which a JSON string holds as they are.
func Plain(s string) bool {
	for i := plainPrefix(s); i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// PlainString reads the JSON string that starts at s[i] when it is all
// plain (Plain): its content, which aliases s, and the index past its
// closing quote. ok is false for any other value, which a decoder that
// reads by position then leaves to Walk.
func PlainString(s string, i int) (v string, end int, ok bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	// A plain string holds no quote: the next one closes it.
	n := strings.IndexByte(s[i+1:], '"')
	if n < 0 || !Plain(s[i+1:i+1+n]) {
		return "", 0, false
	}
	return s[i+1 : i+1+n], i + n + 2, true
}

// plainPrefix returns how many of s's first bytes, in whole words of 8, are
// plain: printable ASCII other than a quote or a backslash. It reads 8
// bytes at a time (SWAR): a string decoder's hot loop, over every body.
func plainPrefix(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if w := word(s, i); unplain(w)&highs != 0 {
			break
		}
	}
	return i
}

// htmlSafePrefix is plainPrefix for what encoding/json writes as it is:
// also no '<', '>' or '&', which it escapes. The encoders' hot loop, over
// every string of every frame the server sends.
func htmlSafePrefix(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := word(s, i)
		if (unplain(w)|zeroIn(w^ones*'<')|zeroIn(w^ones*'>')|zeroIn(w^ones*'&'))&highs != 0 {
			break
		}
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// word reads s[i:i+8] as a little-endian word (one load, once compiled).
func word(s string, i int) uint64 {
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// unplain sets the high bit of a byte of w (and perhaps of bytes above it,
// by borrows, which only matters once one is set) when that byte is under
// 0x20, at or over 0x80, a quote or a backslash.
func unplain(w uint64) uint64 {
	return (w - ones*0x20) | w | zeroIn(w^ones*'"') | zeroIn(w^ones*'\\')
}

// zeroIn sets the high bit of each zero byte of x (the usual test, with
// the same borrows as unplain).
func zeroIn(x uint64) uint64 { return (x - ones) &^ x }

// Int decodes a JSON integer; null is 0.
func Int(v string) (int64, error) {
	if v == "null" {
		return 0, nil
	}
	// JSON's grammar, which strconv's is wider than: no sign but a
	// minus, no leading zero.
	d := strings.TrimPrefix(v, "-")
	if d == "" || d[0] < '0' || d[0] > '9' || (d[0] == '0' && len(d) > 1) {
		return 0, ErrSyntax
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, ErrSyntax
	}
	return n, nil
}

// AppendString appends s as a JSON string, as encoding/json writes it.
func AppendString(dst []byte, s string) []byte {
	for i := htmlSafePrefix(s); i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// AppendMessage appends m as JSON, byte for byte what json.Marshal writes
// for it. m.Meta must be compacted JSON, or empty.
func AppendMessage(dst []byte, m *chat.Message) []byte {
	for _, c := range m.Meta {
		if c == '<' || c == '>' || c == '&' || c >= 0x80 {
			// encoding/json escapes these inside raw JSON too.
			b, err := json.Marshal(m)
			if err != nil {
				b, _ = json.Marshal(chat.Message{}) // never: meta is validated
			}
			return append(dst, b...)
		}
	}
	dst = append(dst, `{"conversation_id":`...)
	dst = AppendString(dst, m.ConversationID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, m.Seq, 10)
	dst = append(dst, `,"sender":`...)
	dst = AppendString(dst, string(m.Sender))
	dst = append(dst, `,"client_id":`...)
	dst = AppendString(dst, m.ClientID)
	dst = append(dst, `,"kind":`...)
	dst = AppendString(dst, m.Kind)
	dst = append(dst, `,"body":`...)
	dst = AppendString(dst, m.Body)
	dst = append(dst, `,"meta":`...)
	if len(m.Meta) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, m.Meta...)
	}
	dst = append(dst, `,"sent_at":"`...)
	dst = m.SentAt.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}
