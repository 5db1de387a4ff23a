package wsframe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// headerOf reads one header from b with a buffer of bufio's minimum, as
// the server's sessions do, and says how many bytes it took.
func headerOf(b []byte, masked bool) (Header, int, error) {
	r := bufio.NewReaderSize(bytes.NewReader(b), 16)
	h, err := ReadHeader(r, masked)
	rest, _ := io.ReadAll(r)
	return h, len(b) - len(rest), err
}

func TestReadHeader(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	long := bytes.Repeat([]byte("x"), 70000)
	for _, c := range []struct {
		name   string
		b      []byte
		masked bool
		want   Header
		took   int
	}{
		{"short text, from a server", frame(0x81, []byte("hi"), nil), false, Header{Fin: true, Op: OpText, Len: 2}, 2},
		{"short text, from a client", frame(0x81, []byte("hi"), key), true, Header{Fin: true, Op: OpText, Len: 2, Key: 0x04030201}, 6},
		{"16-bit length", frame(0x01, long[:300], nil), false, Header{Op: OpText, Len: 300}, 4},
		{"64-bit length, masked", frame(0x82, long, key), true, Header{Fin: true, Op: OpBinary, Len: 70000, Key: 0x04030201}, 14},
		{"continuation", frame(0x80, []byte("b"), nil), false, Header{Fin: true, Op: OpContinuation, Len: 1}, 2},
		{"ping of 125 bytes", frame(0x89, long[:125], key), true, Header{Fin: true, Op: OpPing, Len: 125, Key: 0x04030201}, 6},
		{"empty close", frame(0x88, nil, nil), false, Header{Fin: true, Op: OpClose}, 2},
	} {
		h, took, err := headerOf(c.b, c.masked)
		if err != nil || h != c.want || took != c.took {
			t.Errorf("%s: got %+v after %d bytes, %v; want %+v after %d", c.name, h, took, err, c.want, c.took)
		}
	}
}

func TestReadHeaderRefuses(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	huge := binary.BigEndian.AppendUint64([]byte{0x82, 127}, 1<<63)
	for _, c := range []struct {
		name   string
		b      []byte
		masked bool
		want   error
	}{
		{"nothing: the end between frames", nil, false, io.EOF},
		{"one byte", []byte{0x81}, false, io.ErrUnexpectedEOF},
		{"a 64-bit length cut short", []byte{0x82, 127, 0, 0}, false, io.ErrUnexpectedEOF},
		{"a masking key cut short", []byte{0x81, 0x85, 1, 2}, true, io.ErrUnexpectedEOF},
		{"a reserved bit", frame(0xc1, []byte("x"), nil), false, ErrProtocol},
		{"masked, from a server", frame(0x81, []byte("x"), key), false, ErrProtocol},
		{"unmasked, from a client", frame(0x81, []byte("x"), nil), true, ErrProtocol},
		{"a length of 2^63", huge, false, ErrProtocol},
		{"a fragmented ping", frame(0x09, []byte("x"), nil), false, ErrProtocol},
		{"a ping of 126 bytes", frame(0x89, bytes.Repeat([]byte("x"), 126), nil), false, ErrProtocol},
		{"a reserved control opcode", frame(0x8b, nil, nil), false, ErrProtocol},
	} {
		h, _, err := headerOf(c.b, c.masked)
		if !errors.Is(err, c.want) || h != (Header{}) {
			t.Errorf("%s: got %+v, %v; want %v", c.name, h, err, c.want)
		}
	}
}

func TestCheckData(t *testing.T) {
	for _, c := range []struct {
		op        byte
		inMessage bool
		ok        bool
	}{
		{OpText, false, true},
		{OpBinary, false, true},
		{OpContinuation, true, true},
		{OpContinuation, false, false}, // no message to continue
		{OpText, true, false},          // a new message inside one
		{0x3, false, false},            // reserved
	} {
		if err := CheckData(c.op, c.inMessage); (err == nil) != c.ok {
			t.Errorf("CheckData(%#x, %v) = %v", c.op, c.inMessage, err)
		}
	}
}

func TestParseClose(t *testing.T) {
	var cf *CloseFrame
	if err := ParseClose([]byte{0x03, 0xe8, 'b', 'y', 'e'}); !errors.As(err, &cf) || cf.Code != 1000 || cf.Reason != "bye" {
		t.Errorf("a code and a reason: %v", err)
	}
	if err := ParseClose(nil); !errors.As(err, &cf) || cf.Code != 0 || cf.Reason != "" {
		t.Errorf("empty: %v", err)
	}
	if err := ParseClose([]byte{0x03}); !errors.Is(err, ErrProtocol) {
		t.Errorf("one byte: %v, want ErrProtocol", err)
	}
}

// FuzzReadHeader: any bytes give a header or an error, never a panic; a
// header takes exactly its encoded size, and what it allows is what the
// RFC does.
//
//	go test -run '^$' -fuzz FuzzReadHeader -fuzztime 60s ./internal/wsframe/
func FuzzReadHeader(f *testing.F) {
	f.Add(frame(0x81, []byte("hi"), nil), false)
	f.Add(frame(0x81, []byte("hi"), []byte{1, 2, 3, 4}), true)
	f.Add(frame(0x02, bytes.Repeat([]byte("x"), 300), nil), false)
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9}, true)
	f.Add([]byte{0x89, 0x7e, 0, 1}, false)
	f.Fuzz(func(t *testing.T, b []byte, masked bool) {
		h, took, err := headerOf(b, masked)
		if err != nil {
			return
		}
		// 2 bytes, then a length of 16 or 64 bits, then a key
		size := 2 + map[byte]int{126: 2, 127: 8}[b[1]&0x7f]
		if masked {
			size += 4
			if k := binary.LittleEndian.AppendUint32(nil, h.Key); !bytes.Equal(k, b[size-4:size]) {
				t.Fatalf("key %x, want %x", k, b[size-4:size])
			}
		}
		switch {
		case took != size:
			t.Fatalf("took %d bytes of a %d-byte header", took, size)
		case h.Len>>63 != 0:
			t.Fatalf("a length of %d", h.Len)
		case h.Op >= OpClose && (!h.Fin || h.Len > 125 || h.Op > OpPong):
			t.Fatalf("a control frame the RFC forbids: %+v", h)
		case b[0]&0x70 != 0 || (b[1]&0x80 != 0) != masked:
			t.Fatalf("reserved bits or the wrong masking allowed: %x", b[:2])
		}
	})
}

// waitReader gives its bytes, then reports that the reader would have
// waited for more.
type waitReader struct{ b []byte }

var errWaited = errors.New("the reader waited for more bytes")

func (w *waitReader) Read(p []byte) (int, error) {
	if len(w.b) == 0 {
		return 0, errWaited
	}
	n := copy(p, w.b)
	w.b = w.b[n:]
	return n, nil
}

// A header's first two bytes are judged before the reader waits for the
// rest: a client's unmasked frame is refused at once, not after the
// bytes that a masked one would have.
func TestReadHeaderJudgesFirstBytesFirst(t *testing.T) {
	r := bufio.NewReaderSize(&waitReader{b: []byte{0x81, 0x01, 'x'}}, 16)
	if _, err := ReadHeader(r, true); !errors.Is(err, ErrProtocol) {
		t.Fatalf("an unmasked frame from a client: %v, want ErrProtocol", err)
	}
}
