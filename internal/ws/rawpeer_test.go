package ws_test

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/ws"
)

// clientFrame encodes a client's frame, masked as RFC 6455 requires. long
// forces the 64-bit length encoding.
func clientFrame(fin bool, opcode byte, payload []byte, long bool) []byte {
	var mask [4]byte
	rand.Read(mask[:])
	return appendClientFrame(nil, fin, opcode, payload, long, mask)
}

// appendClientFrame appends a client's frame with the masking key mask.
func appendClientFrame(f []byte, fin bool, opcode byte, payload []byte, long bool, mask [4]byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	f = append(f, b0)
	switch n := len(payload); {
	case long:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	}
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

// rawPeer is a raw socket after the handshake, reading the server's frames.
// newRawPeer returns it once the server said ready.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func newRawPeer(t *testing.T, e *env, tok string) *rawPeer {
	nc := rawDial(t, e.url, tok)
	t.Cleanup(func() { nc.Close() })
	p := &rawPeer{t: t, nc: nc, r: bufio.NewReader(nc)}
	if f := p.nextData(); f.Type != "ready" {
		t.Fatalf("got %s, want ready", f.Raw)
	}
	return p
}

// write writes b in pieces cut at cuts (offsets into b), pausing between
// them long enough for the server to have read what came before.
func (p *rawPeer) write(b []byte, cuts ...int) {
	p.t.Helper()
	prev := 0
	for _, c := range append(cuts, len(b)) {
		if _, err := p.nc.Write(b[prev:c]); err != nil {
			p.t.Fatal(err)
		}
		prev = c
		if c < len(b) {
			time.Sleep(30 * time.Millisecond)
		}
	}
}

// next reads the server's next frame: its opcode and payload.
func (p *rawPeer) next() (byte, []byte) {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(readWait))
	op, b, err := readServerFrame(p.r, nil)
	if err != nil {
		p.t.Fatalf("reading a frame: %v", err)
	}
	return op, b
}

// nextData reads the server's next data frame, skipping its pings.
func (p *rawPeer) nextData() frame {
	p.t.Helper()
	for {
		op, b := p.next()
		if op == 0x9 {
			continue
		}
		if op != 0x1 {
			p.t.Fatalf("frame with opcode %#x (%q), want text", op, b)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			p.t.Fatalf("frame %q: %v", b, err)
		}
		f.Raw = b
		return f
	}
}

func waitIdle(t *testing.T, e *env, n int) {
	t.Helper()
	waitFor(t, fmt.Sprint(n, " idle sessions"), 5*time.Second, func() bool { return e.ws.IdleConnections() == n })
}

// Frames cut anywhere (inside a header, its extended length, its mask,
// its payload, between the fragments of a message) with pauses between the
// pieces: the server waits for the rest instead of taking the pause for
// idleness, and answers each frame once it is whole.
func TestFramesCutWithPauses(t *testing.T) {
	e := newEnv(t, envOpts{memory: true, cfg: ws.Config{MaxFrameBytes: 1 << 20}})
	e.app("messenger")
	p := newRawPeer(t, e, e.token(alice))

	ping := func(ref string) []byte { return fmt.Appendf(nil, `{"type":"ping","ref":%q}`, ref) }
	expectPong := func(ref string) {
		t.Helper()
		if f := p.nextData(); f.Type != "pong" || f.Ref != ref {
			t.Fatalf("got %.100s, want the pong of %.20s", f.Raw, ref)
		}
	}

	// A short frame: cut after its first byte, in its mask, in its payload.
	p.write(clientFrame(true, 0x1, ping("short"), false), 1, 4, 9)
	expectPong("short")

	// A 16-bit length, cut inside it.
	ref := strings.Repeat("m", 300)
	p.write(clientFrame(true, 0x1, ping(ref), false), 1, 3, 8, 100)
	expectPong(ref)

	// A 64-bit length, cut inside it; larger than a read chunk.
	ref = strings.Repeat("l", 70000)
	p.write(clientFrame(true, 0x1, ping(ref), true), 2, 6, 12, 14, 5000, 60000)
	expectPong(ref)

	// A message in two fragments, with a pause between them.
	msg := ping("fragments")
	p.write(append(clientFrame(false, 0x1, msg[:10], false), clientFrame(true, 0x0, msg[10:], false)...), 16)
	expectPong("fragments")

	// A control ping between two data frames, cut in its header and in its
	// payload.
	x, y := clientFrame(true, 0x1, ping("x"), false), clientFrame(true, 0x1, ping("y"), false)
	cp := clientFrame(true, 0x9, []byte("hello"), false)
	all := append(append(x, cp...), y...)
	p.write(all, len(x)+1, len(x)+8)
	expectPong("x")
	if op, b := p.next(); op != 0xa || string(b) != "hello" {
		t.Fatalf("got opcode %#x %q, want the pong of the control ping", op, b)
	}
	expectPong("y")
	if runtime.GOOS == "linux" {
		// The frames ended where a message ends: the session parks.
		waitIdle(t, e, 1)
	}
}

// A client's close is echoed: its code when it gave one, an empty close
// when it gave none (1005 may not be sent); a client's ping is answered
// with its payload; frames no client may send close with 1002.
func TestCloseHandshakeAndPings(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app("messenger")
	tok := e.token(alice)
	for _, c := range []struct {
		name string
		send []byte
		want []byte // the close frame's payload
	}{
		{"code", clientFrame(true, 0x8, []byte{0x03, 0xe8, 'b', 'y', 'e'}, false), []byte{0x03, 0xe8}},
		{"no code", clientFrame(true, 0x8, nil, false), []byte{}},
		{"unmasked", []byte{0x81, 0x01, 'x'}, []byte{0x03, 0xea}},
		{"reserved opcode", clientFrame(true, 0x3, []byte("x"), false), []byte{0x03, 0xea}},
	} {
		p := newRawPeer(t, e, tok)
		p.write(clientFrame(true, 0x9, []byte("hello"), false))
		if op, b := p.next(); op != 0xa || string(b) != "hello" {
			t.Fatalf("%s: answer to a ping: opcode %#x %q, want a pong with its payload", c.name, op, b)
		}
		p.write(c.send)
		op, b := p.next()
		if op != 0x8 || len(b) < len(c.want) || string(b[:len(c.want)]) != string(c.want) || (len(c.want) == 0 && len(b) != 0) {
			t.Fatalf("%s: opcode %#x %q, want a close starting %q", c.name, op, b, c.want)
		}
	}
}
