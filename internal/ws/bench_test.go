package ws_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/cputime"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
)

// BenchmarkDelivery measures messages delivered per second and end-to-end
// latency through the WebSocket path: 100 pairs of users on one node
// (Pebble, every message synced before its ack), each sender keeping up to
// 16 messages in flight, each receiver reading its stream. A message counts
// when the receiver's socket has it; latency is from the sender's write to
// the receiver's read. The load generator runs in this process and keeps
// lean, so that the server's share of the 2 cores is what is measured: it
// speaks RFC 6455 framing on raw sockets (benchPeer), writes each free
// window's sends with one system call, and looks only for the fields it
// needs.
//
// The memstore case is not durable; it shows what the WebSocket path and
// the load generator cost without the store.
//
//	go test -run '^$' -bench Delivery -benchtime 100000x -count 3 ./internal/ws/
func BenchmarkDelivery(b *testing.B) {
	b.Run("pebble", func(b *testing.B) { benchDelivery(b, false) })
	b.Run("memstore", func(b *testing.B) { benchDelivery(b, true) })
}

func benchDelivery(b *testing.B, memory bool) {
	const pairs, window = 100, 16
	if !memory {
		// As serve runs a node on Pebble (pebblestore.Procs); the name's
		// -N suffix still gives the -cpu setting.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(pebblestore.Procs(runtime.GOMAXPROCS(0))))
	}
	e := newEnv(b, envOpts{memory: memory})
	e.app("bench")
	type pair struct {
		conv     string
		from, to *benchPeer
	}
	ps := make([]pair, pairs)
	for i := range ps {
		s, r := chat.NewAddress("bench", fmt.Sprint("s", i)), chat.NewAddress("bench", fmt.Sprint("r", i))
		ps[i].conv = e.direct(s, r)
		ps[i].from = newBenchPeer(b, e, e.token(s))
		ps[i].to = newBenchPeer(b, e, e.token(r))
		for _, p := range []*benchPeer{ps[i].from, ps[i].to} {
			for {
				f, err := p.next()
				if err != nil {
					b.Fatal(err)
				}
				if bytes.HasPrefix(f, []byte(`{"type":"ready"`)) {
					break
				}
			}
		}
	}
	per := max(1, b.N/pairs)
	lat := make([][]int64, pairs)
	var errs atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Self()
	if cpu0 == 0 {
		b.Fatal("the process's CPU time cannot be read")
	}
	var wg sync.WaitGroup
	for i := range ps {
		p := &ps[i]
		slots := make(chan struct{}, window)
		// Sender: write while fewer than window are unacknowledged.
		wg.Go(func() {
			prefix := `{"type":"send","conversation_id":"` + p.conv + `","client_id":"`
			buf := make([]byte, 0, 256)
			for n := 0; n < per; {
				slots <- struct{}{}
				// Every send whose slot is free goes in one system call,
				// as the client package's corked writer does.
				p.from.mu.Lock()
				for free := true; free && n < per; n++ {
					buf = append(buf[:0], prefix...)
					buf = strconv.AppendInt(buf, int64(n), 10)
					buf = append(buf, `","ref":"r","body":"`...)
					buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
					buf = append(buf, `"}`...)
					p.from.out = appendClientFrame(p.from.out, true, 0x1, buf, false, benchMask())
					select {
					case slots <- struct{}{}:
					default:
						free = false
					}
				}
				err := p.from.flush()
				p.from.mu.Unlock()
				if err != nil {
					errs.Add(1)
					return
				}
			}
		})
		// The sender's socket: acks free slots; its own updates pass.
		wg.Go(func() {
			for acked := 0; acked < per; {
				f, err := p.from.next()
				if err != nil {
					errs.Add(1)
					return
				}
				switch {
				case bytes.HasPrefix(f, []byte(`{"type":"ack"`)):
					acked++
					<-slots
				case bytes.HasPrefix(f, []byte(`{"type":"error"`)):
					b.Errorf("error frame: %s", f)
					errs.Add(1)
					return
				}
			}
		})
		// Receiver: every message, latency from the body's timestamp.
		wg.Go(func() {
			l := make([]int64, 0, per)
			for len(l) < per {
				f, err := p.to.next()
				if err != nil {
					errs.Add(1)
					return
				}
				i := bytes.Index(f, []byte(`"body":"`))
				if i < 0 {
					continue
				}
				f = f[i+len(`"body":"`):]
				t, err := strconv.ParseInt(string(f[:bytes.IndexByte(f, '"')]), 10, 64)
				if err != nil {
					b.Errorf("body: %v", err)
					errs.Add(1)
					return
				}
				l = append(l, time.Now().UnixNano()-t)
			}
			lat[i] = l
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cputime.Self()-cpu0
	b.StopTimer()
	if errs.Load() > 0 {
		b.Fatalf("%d connections failed", errs.Load())
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(all[len(all)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100])/1e3, "p99-µs")
	// The CPU (server and generator) per message varies less than the
	// rate on a shared machine: compare builds by it.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-µs/msg")
}

// benchPeer is a generator's socket after the handshake, spoken to
// directly (RFC 6455 framing) rather than through a WebSocket library, so
// that the generator's share of the 2 cores stays small: it writes its
// sends corked, one system call per free window, and reads frames into a
// reused buffer.
type benchPeer struct {
	nc  net.Conn
	r   *bufio.Reader
	in  []byte
	mu  sync.Mutex // guards out and writes to nc
	out []byte
}

func newBenchPeer(b *testing.B, e *env, tok string) *benchPeer {
	nc := rawDial(b, e.url+"?after=1", tok)
	b.Cleanup(func() { nc.Close() })
	return &benchPeer{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

// flush writes out. p.mu is held.
func (p *benchPeer) flush() error {
	_, err := p.nc.Write(p.out)
	p.out = p.out[:0]
	return err
}

// next returns the payload of the next data frame, valid until the next
// call; it answers pings.
func (p *benchPeer) next() ([]byte, error) {
	for {
		op, b, err := readServerFrame(p.r, p.in)
		if err != nil {
			return nil, err
		}
		p.in = b
		switch op {
		case 0x1:
			return b, nil
		case 0x9:
			p.mu.Lock()
			p.out = appendClientFrame(p.out, true, 0xa, b, false, benchMask())
			err := p.flush()
			p.mu.Unlock()
			if err != nil {
				return nil, err
			}
		case 0x8:
			return nil, fmt.Errorf("the server closed the socket: % x", b)
		}
	}
}

// benchMask is a masking key; math/rand/v2's generator needs no system call.
func benchMask() (m [4]byte) {
	binary.LittleEndian.PutUint32(m[:], mrand.Uint32())
	return m
}

// BenchmarkIdleMemory measures the server's memory per idle connection:
// the growth of heap in use plus goroutine stacks, after GC, with 10,000
// sockets open and idle, divided by 10,000. The clients are raw sockets in
// a child process (this test binary again, see TestMain), so that the
// process measured holds only the server's side, and so that each process
// stays within the file descriptor limit.
//
// It makes one measurement per call, whatever b.N: 10,000 sockets is the
// size that matters, and the time per op means nothing here.
//
//	go test -run '^$' -bench IdleMemory -count 3 ./internal/ws/
func BenchmarkIdleMemory(b *testing.B) {
	const n = 10000
	{
		e := newEnv(b, envOpts{})
		e.app("idle")
		var toks strings.Builder
		for i := range n {
			toks.WriteString(e.token(chat.NewAddress("idle", fmt.Sprint("u", i))))
			toks.WriteByte('\n')
		}
		toks.WriteByte('\n') // the end of the list
		before, gbefore := serverMemory()

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), idleHelperEnv+"="+e.url)
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go func() { in.Write([]byte(toks.String())) }()
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "connected" {
			b.Fatalf("helper: %q %v", line, err)
		}
		waitFor(b, "every session", time.Minute, func() bool { return e.ws.Connections() == n })
		// Let the ready frames go out and the writers end.
		time.Sleep(time.Second)
		after, gafter := serverMemory()
		b.ReportMetric(float64(after-before)/n, "B/conn")
		b.ReportMetric(float64(gafter-gbefore)/n, "goroutines/conn")
		in.Close()
		cmd.Wait()
		waitFor(b, "the sessions to end", time.Minute, func() bool { return e.ws.Connections() == 0 })
	}
}

// serverMemory is heap in use plus goroutine stacks, after GC.
func serverMemory() (bytes uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse, runtime.NumGoroutine()
}

const idleHelperEnv = "SWITCHBOARD_WS_IDLE_HELPER"

// TestMain runs the idle clients of BenchmarkIdleMemory when the test
// binary is started as its helper, and the tests otherwise.
func TestMain(m *testing.M) {
	if u := os.Getenv(idleHelperEnv); u != "" {
		os.Exit(idleClients(u))
	}
	os.Exit(m.Run())
}

// idleClients opens one raw WebSocket per token read from stdin, up to an
// empty line, says "connected", and holds them, never reading, until stdin closes.
func idleClients(rawURL string) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 4096), 4096)
	var conns []net.Conn
	for in.Scan() && in.Text() != "" {
		nc, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
		if err == nil {
			err = rawHandshake(nc, u, in.Text())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "idle helper:", err)
			return 1
		}
		conns = append(conns, nc)
	}
	fmt.Println("connected")
	for in.Scan() {
	}
	for _, c := range conns {
		c.Close()
	}
	return 0
}
