package ws_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// readServerFrame reads one unmasked frame of the server, its payload into
// buf's array when it fits (nil: a new one).
func readServerFrame(r *bufio.Reader, buf []byte) (opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = slices.Grow(buf[:0], int(n))[:n]
	_, err = io.ReadFull(r, payload)
	return h[0] & 0x0f, payload, err
}

// TestFramesRightBehindTheHandshake sends frames in the same TCP write as
// the upgrade request, before the 101: the server has read them along with
// the request, and must hand them to the session instead of dropping them
// (which left the session reading a frame from its middle, and closing
// with a protocol error).
func TestFramesRightBehindTheHandshake(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app("messenger")
	tok := e.token(alice)
	u, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))

	req, key := upgradeRequest(u, tok)
	msg := []byte(req)
	for _, ref := range []string{"early-1", "early-2", "early-3"} {
		msg = append(msg, clientFrame(true, 0x1, []byte(`{"type":"ping","ref":"`+ref+`"}`), false)...)
	}
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	if err := readUpgradeAnswer(br, key); err != nil {
		t.Fatal(err)
	}
	want := []string{"early-1", "early-2", "early-3"}
	for len(want) > 0 {
		op, p, err := readServerFrame(br, nil)
		if err != nil {
			t.Fatalf("reading a frame, %v still unanswered: %v", want, err)
		}
		if op == 0x8 {
			t.Fatalf("the server closed the socket: %q; %v unanswered", p, want)
		}
		if s := string(p); strings.Contains(s, `"pong"`) {
			if !strings.Contains(s, `"ref":"`+want[0]+`"`) {
				t.Fatalf("pong %s, want ref %s", s, want[0])
			}
			want = want[1:]
		}
	}
}
