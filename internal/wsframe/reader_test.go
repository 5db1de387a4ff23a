package wsframe

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// frame builds a raw frame: first is the header's first byte (FIN, RSV,
// opcode); a non-nil key masks it.
func frame(first byte, p []byte, key []byte) []byte {
	b := []byte{first}
	mask := byte(0)
	if key != nil {
		mask = 0x80
	}
	switch n := len(p); {
	case n < 126:
		b = append(b, mask|byte(n))
	case n <= 0xffff:
		b = append(b, mask|126, byte(n>>8), byte(n))
	default:
		b = append(b, mask|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if key != nil {
		b = append(b, key...)
		q := append([]byte(nil), p...)
		for i := range q {
			q[i] ^= key[i%4]
		}
		p = q
	}
	return append(b, p...)
}

type ctrl struct {
	op byte
	p  string
}

// reader reads stream, split after its first split bytes into what was
// read before (pending) and the rest, and records the control frames it
// writes.
func reader(stream []byte, split, limit int) (*Reader, *[]ctrl) {
	var sent []ctrl
	r := NewReader(stream[:split], bytes.NewReader(stream[split:]), limit, func(op byte, p []byte) error {
		sent = append(sent, ctrl{op, string(p)})
		return nil
	})
	return r, &sent
}

// Messages of every header form come back whole, wherever the bytes read
// before the reader took over end.
func TestReaderMessages(t *testing.T) {
	var stream []byte
	var want [][]byte
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70000} {
		p := bytes.Repeat([]byte{byte('a' + n%26)}, n)
		stream = AppendText(stream, p)
		want = append(want, p)
	}
	for _, split := range []int{0, 1, 2, 3, 200, len(stream) - 1, len(stream)} {
		r, sent := reader(stream, split, 1<<20)
		var buf []byte
		for i, w := range want {
			var err error
			if buf, err = r.Next(buf[:0]); err != nil {
				t.Fatalf("split %d, message %d: %v", split, i, err)
			}
			if !bytes.Equal(buf, w) {
				t.Fatalf("split %d, message %d: %d bytes, want %d", split, i, len(buf), len(w))
			}
		}
		if _, err := r.Next(buf[:0]); err != io.EOF {
			t.Errorf("split %d: after the last message %v, want io.EOF", split, err)
		}
		if len(*sent) != 0 {
			t.Errorf("split %d: sent %v, want nothing", split, *sent)
		}
	}
}

// Fragments are joined; a ping between them is answered with a pong of its
// payload, and a pong is skipped.
func TestReaderFragmentsAndPing(t *testing.T) {
	var s []byte
	s = append(s, frame(0x01, []byte("hel"), nil)...)                // text, not final
	s = append(s, frame(0x89, []byte("p1"), nil)...)                 // ping
	s = append(s, frame(0x00, []byte("lo "), nil)...)                // continuation
	s = append(s, frame(0x8a, []byte("x"), nil)...)                  // pong
	s = append(s, frame(0x80, []byte("world"), nil)...)              // final continuation
	s = append(s, frame(0x82, []byte{0, 1, 2}, nil)...)              // binary
	s = append(s, frame(0x88, []byte{0x03, 0xe8, 'b', 'y'}, nil)...) // close 1000 "by"
	r, sent := reader(s, 5, 1<<20)
	got, err := r.Next(nil)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("got %q, %v; want \"hello world\"", got, err)
	}
	if got, err = r.Next(got[:0]); err != nil || !bytes.Equal(got, []byte{0, 1, 2}) {
		t.Fatalf("got %v, %v; want the binary message", got, err)
	}
	_, err = r.Next(got[:0])
	var cf *CloseFrame
	if !errors.As(err, &cf) || cf.Code != 1000 || cf.Reason != "by" {
		t.Fatalf("at the close frame: %v, want code 1000 reason \"by\"", err)
	}
	want := []ctrl{{OpPong, "p1"}, {OpClose, "\x03\xe8"}}
	if len(*sent) != len(want) || (*sent)[0] != want[0] || (*sent)[1] != want[1] {
		t.Errorf("sent %q, want %q", *sent, want)
	}
}

// Frames no server may send, messages over the limit and streams cut in a
// frame are errors, not messages.
func TestReaderRefuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"masked", frame(0x81, []byte("hi"), []byte{1, 2, 3, 4}), ErrProtocol},
		{"reserved bit", frame(0xc1, []byte("hi"), nil), ErrProtocol},
		{"reserved opcode", frame(0x83, []byte("hi"), nil), ErrProtocol},
		{"reserved control opcode", frame(0x8b, nil, nil), ErrProtocol},
		{"continuation first", frame(0x80, []byte("hi"), nil), ErrProtocol},
		{"text inside a message", append(frame(0x01, []byte("a"), nil), frame(0x81, []byte("b"), nil)...), ErrProtocol},
		{"fragmented ping", frame(0x09, nil, nil), ErrProtocol},
		{"long ping", frame(0x89, make([]byte, 126), nil), ErrProtocol},
		{"close of one byte", frame(0x88, []byte{3}, nil), ErrProtocol},
		{"length with the top bit", []byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, ErrProtocol},
		{"too big", frame(0x81, make([]byte, 1001), nil), ErrTooBig},
		{"too big in fragments", append(frame(0x01, make([]byte, 600), nil), frame(0x80, make([]byte, 600), nil)...), ErrTooBig},
		{"cut in the header", []byte{0x81}, io.ErrUnexpectedEOF},
		{"cut in the length", []byte{0x81, 126, 1}, io.ErrUnexpectedEOF},
		{"cut in the payload", frame(0x81, []byte("hello"), nil)[:4], io.ErrUnexpectedEOF},
		{"cut in a ping", frame(0x89, []byte("hello"), nil)[:4], io.ErrUnexpectedEOF},
	} {
		r, _ := reader(c.stream, 0, 1000)
		if got, err := r.Next(nil); !errors.Is(err, c.want) {
			t.Errorf("%s: %q, %v; want %v", c.name, got, err, c.want)
		}
	}
	r, _ := reader(frame(0x88, nil, nil), 0, 1000)
	var cf *CloseFrame
	if _, err := r.Next(nil); !errors.As(err, &cf) || cf.Code != 0 {
		t.Errorf("an empty close frame: %v, want a CloseFrame without a code", err)
	}
}

// FuzzReader: any bytes give messages within the limit or an error, never
// a panic, and a stream of text frames reads back as its messages.
//
//	go test -run '^$' -fuzz FuzzReader -fuzztime 60s ./internal/wsframe/
func FuzzReader(f *testing.F) {
	f.Add(AppendText(AppendText(nil, []byte("one")), []byte(strings.Repeat("two", 50))), 3)
	f.Add(append(frame(0x01, []byte("a"), nil), frame(0x80, []byte("b"), nil)...), 0)
	f.Add(frame(0x89, []byte("ping"), nil), 1)
	f.Add(frame(0x88, []byte{0x03, 0xe8}, nil), 2)
	f.Add([]byte{0x81, 127, 0, 0, 0, 0, 0, 0, 1, 0}, 0)
	f.Fuzz(func(t *testing.T, stream []byte, split int) {
		if split < 0 || split > len(stream) {
			split = len(stream) / 2
		}
		const limit = 512
		r, _ := reader(stream, split, limit)
		var buf []byte
		for i := 0; i < 1000; i++ {
			var err error
			if buf, err = r.Next(buf[:0]); err != nil {
				return
			}
			if len(buf) > limit {
				t.Fatalf("a message of %d bytes, over the limit of %d", len(buf), limit)
			}
		}
	})
}

// BenchmarkReader reads a server's frames as the Go client gets them in the
// pairs benchmark: text frames of about 300 bytes.
//
//	go test -run '^$' -bench 'Reader$' ./internal/wsframe/
func BenchmarkReader(b *testing.B) {
	var stream []byte
	msg := bytes.Repeat([]byte("x"), 300)
	for range 1000 {
		stream = AppendText(stream, msg)
	}
	src := bytes.NewReader(stream)
	r := NewReader(nil, src, 1<<20, nil)
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		src.Reset(stream)
		r.r.Reset(src)
		for range 1000 {
			var err error
			if buf, err = r.Next(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
