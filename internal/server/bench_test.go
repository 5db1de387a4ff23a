package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/cputime"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
)

// BenchmarkHTTPSend measures durable sends through the whole node: HTTP,
// JSON, token check, authorisation, Pebble commit (fsync), answer. Each
// sender has its own direct conversation and keep-alive connection. The
// load generator runs in the same process, so its CPU counts too; it is a
// lean HTTP/1.1 client (rawSender), as wrk would be, not net/http's.
func BenchmarkHTTPSend(b *testing.B) {
	for _, senders := range []int{1, 8, 64} {
		b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) { benchSend(b, "pebble", senders) })
	}
}

// BenchmarkHTTPSendMemstore is the same over the in-memory store: the
// ceiling of everything but the durable store, for comparison.
func BenchmarkHTTPSendMemstore(b *testing.B) {
	for _, senders := range []int{1, 64} {
		b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) { benchSend(b, "memory", senders) })
	}
}

func benchSend(b *testing.B, store string, senders int) {
	if store == "pebble" {
		// As serve runs a node on Pebble (pebblestore.Procs); the name's
		// -N suffix still gives the -cpu setting.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(pebblestore.Procs(runtime.GOMAXPROCS(0))))
	}
	e := startWith(b, Config{AdminToken: "bench-admin", Store: store})
	e.app("bench")
	// The benchmark measures the store and the API, not the limits: lift
	// the app's and its users' send rates (defaults 1000/s and 10/s).
	e.do("PUT", "/v1/admin/apps/bench/limits", e.admin, `{"sends_per_second":1000000,"burst":1000000,"user_sends_per_second":100000,"user_burst":100000}`).want(b, 200, nil)
	ss := make([]*rawSender, senders)
	toks, convs := make([]string, senders), make([]string, senders)
	for i := range ss {
		tok := e.token(fmt.Sprintf("bench:s%d", i))
		c := e.create(tok, 201, "", fmt.Sprintf("bench:r%d", i))
		toks[i], convs[i] = tok, c.ID
		rs, err := dialRawSender(e.base, "/v1/conversations/"+c.ID+"/messages", tok)
		if err != nil {
			b.Fatal(err)
		}
		defer rs.nc.Close()
		ss[i] = rs
	}

	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Self()
	begin := time.Now()
	for i := range senders {
		wg.Go(func() {
			s := ss[i]
			var body []byte
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				body = fmt.Appendf(body[:0], `{"client_id":"c-%d","body":"message number %d from the benchmark"}`, n, n)
				t0 := time.Now()
				status, err := s.post(body)
				if err != nil {
					failed.CompareAndSwap(nil, err.Error())
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
				if status != 201 {
					failed.CompareAndSwap(nil, fmt.Sprintf("status %d", status))
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	cpu := cputime.Self() - cpu0
	b.StopTimer()
	if f := failed.Load(); f != nil {
		b.Fatalf("send failed: %v", f)
	}
	// Every answered send is stored: the conversations hold b.N messages.
	var stored int64
	for i := range convs {
		var got struct{ Conversation conversation }
		e.do("GET", "/v1/conversations/"+convs[i], toks[i], nil).want(b, 200, &got)
		stored += got.Conversation.LastSeq
	}
	if stored != int64(b.N) {
		b.Fatalf("the conversations hold %d messages after %d sends", stored, b.N)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sends/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	// CPU per send (server and load generator together) does not depend
	// on what else the machine runs, unlike sends/s.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/send")
}

// rawSender posts to one path over one keep-alive HTTP/1.1 connection, one
// request at a time: the request's bytes built in one buffer and written
// with one system call, the answer read up to its Content-Length. net/http's
// client cost about a third of the benchmark's CPU, as much as the server
// it measured.
type rawSender struct {
	nc   net.Conn
	r    *bufio.Reader
	head []byte // the request up to the Content-Length value
	req  []byte
	body []byte
}

func dialRawSender(base, path, token string) (*rawSender, error) {
	host := strings.TrimPrefix(base, "http://")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	head := "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: "
	return &rawSender{nc: nc, r: bufio.NewReader(nc), head: []byte(head)}, nil
}

// post sends body and returns the answer's status, having read the answer.
func (s *rawSender) post(body []byte) (int, error) {
	s.req = append(s.req[:0], s.head...)
	s.req = strconv.AppendInt(s.req, int64(len(body)), 10)
	s.req = append(s.req, "\r\n\r\n"...)
	s.req = append(s.req, body...)
	if _, err := s.nc.Write(s.req); err != nil {
		return 0, err
	}
	line, err := s.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 201 Created"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err := s.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 { // the blank line ending the header
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("an answer without Content-Length")
	}
	if cap(s.body) < length {
		s.body = make([]byte, length)
	}
	if _, err := io.ReadFull(s.r, s.body[:length]); err != nil {
		return 0, err
	}
	return status, nil
}
