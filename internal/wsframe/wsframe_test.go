package wsframe

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppendText(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0x00}},
		{5, []byte{0x81, 0x05}},
		{125, []byte{0x81, 0x7d}},
		{126, []byte{0x81, 0x7e, 0x00, 0x7e}},
		{256, []byte{0x81, 0x7e, 0x01, 0x00}},
		{65535, []byte{0x81, 0x7e, 0xff, 0xff}},
		{65536, []byte{0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
	} {
		p := bytes.Repeat([]byte{'x'}, c.n)
		f := AppendText([]byte("before"), p)
		want := append(append([]byte("before"), c.want...), p...)
		if !bytes.Equal(f, want) {
			t.Errorf("%d bytes: frame starts % x, want % x", c.n, f[:min(len(f), 16)], want[:min(len(want), 16)])
		}
		if got := Payload(f[len("before"):]); !bytes.Equal(got, p) {
			t.Errorf("%d bytes: Payload gives %d bytes", c.n, len(got))
		}
	}
}

// A frame given in parts is the frame of the parts joined, whichever header
// form their total length takes.
func TestAppendTextParts(t *testing.T) {
	for _, n := range []int{0, 60, 125, 126, 70000} {
		a, b := bytes.Repeat([]byte{'a'}, n/2), bytes.Repeat([]byte{'b'}, n-n/2)
		got := AppendText([]byte("x"), a, nil, b)
		want := AppendText([]byte("x"), append(append([]byte(nil), a...), b...))
		if !bytes.Equal(got, want) {
			t.Errorf("%d bytes in parts: frame starts % x, want % x", n, got[:min(len(got), 16)], want[:min(len(want), 16)])
		}
	}
	if got := AppendText(nil); !bytes.Equal(got, []byte{0x81, 0x00}) {
		t.Errorf("no parts: % x, want an empty frame", got)
	}
}

// The masked example of RFC 6455 section 5.7, and lengths that take each
// header form and leave each remainder of the eight-byte masking loop.
func TestAppendMaskedText(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	got := AppendMaskedText(nil, []byte("Hello"), key)
	want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	if !bytes.Equal(got, want) {
		t.Fatalf("Hello: % x, want % x (RFC 6455 5.7)", got, want)
	}
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 125, 126, 65535, 65536} {
		p := []byte(strings.Repeat("abcdefghij", n/10+1)[:n])
		f := AppendMaskedText(nil, p, key)
		hdr := 2 + 4
		switch {
		case n >= 65536:
			hdr += 8
		case n >= 126:
			hdr += 2
		}
		if len(f) != hdr+n {
			t.Fatalf("%d bytes: frame of %d bytes, want %d", n, len(f), hdr+n)
		}
		if f[1]&0x80 == 0 {
			t.Fatalf("%d bytes: mask bit not set", n)
		}
		if k := f[hdr-4 : hdr]; !bytes.Equal(k, key[:]) {
			t.Fatalf("%d bytes: key % x, want % x", n, k, key)
		}
		for i, b := range f[hdr:] {
			if b^key[i%4] != p[i] {
				t.Fatalf("%d bytes: byte %d unmasks to %q, want %q", n, i, b^key[i%4], p[i])
			}
		}
	}
}

func BenchmarkAppendMaskedText(b *testing.B) {
	p := []byte(`{"type":"send","ref":"r1","conversation_id":"c1","client_id":"k1","body":"` + strings.Repeat("x", 64) + `"}`)
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		buf = AppendMaskedText(buf[:0], p, [4]byte{1, 2, 3, 4})
	}
}
