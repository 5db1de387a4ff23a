package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/switchboard-chat/switchboard/internal/cputime"
)

// The relay is a yardstick for the machine, not a model of Switchboard:
// the pairs workload's shape of load (users in pairs, a closed loop of
// Window sends in flight per user, every message delivered to the peer
// and acknowledged to the sender) over a plain TCP server in this process
// that does none of Switchboard's work: no storage, no WebSocket, no JSON.
// Machines differ by 2x in speed; its figure, taken beside a bench run,
// says how much of a difference between two runs is the machine. With a
// Rate the loop is open, as in Run: each send goes out on its own
// schedule, in a write of its own, whatever came back; the latencies then
// say what this machine's sockets and scheduler alone cost at that rate.
// Unbatched, every frame goes in a write of its own at both ends, as in a
// relay that does not batch: the kind of relay the pairs target's
// reference figure (about 140,000/s) came from, to be set beside it.
//
// Frames, both ways: a 4-byte big-endian payload length, then the
// payload, whose first byte is its kind. A client's first frame is a
// hello naming its user index (4 bytes, big endian); users 2k and 2k+1
// are a pair. Then it sends; each send comes back as an ack to the sender
// and goes, unchanged but for its kind, to the peer as a deliver. A send's
// body is the user's sequence number and the send time (8 bytes each, big
// endian; nanoseconds since the run's epoch), padded to BodySize.
const (
	frameHello   = 'h'
	frameSend    = 's'
	frameDeliver = 'd'
	frameAck     = 'a'
)

const (
	maxRelayFrame = 1 + 4096         // a kind and the largest body
	relayBufSize  = 8 << 10          // holds the largest frame, so a frame is read in place
	relayDrain    = 10 * time.Second // for the last sends' acks and deliveries, before they count as missing
)

// RelayResult is what a relay run measured: sent, delivered and the
// latencies cover the measured window, as in Result; out_of_order covers
// the whole run.
type RelayResult struct {
	Workload        string  `json:"workload"` // "relay"
	Users           int     `json:"users"`
	Loop            string  `json:"loop"`             // "closed" or "open"
	Window          int     `json:"window,omitempty"` // closed loop
	Rate            float64 `json:"rate,omitempty"`   // open loop, messages per second
	Unbatched       bool    `json:"unbatched,omitempty"`
	BodySize        int     `json:"body_size"`
	DurationS       float64 `json:"duration_s"`
	WarmupS         float64 `json:"warmup_s"`
	Sent            int64   `json:"sent"`
	Delivered       int64   `json:"delivered"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	// From the send (the frame going into the sender's buffer; in an open
	// loop, its due time) to the peer's reader taking the deliver off the
	// wire.
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	// OutOfOrder counts deliveries whose sequence number is not the one
	// after the last: reordered, or after a gap. TCP allows none.
	OutOfOrder int64 `json:"out_of_order"`
	// CPU time of this process, relay and load generator together, over
	// the measured window: as in Result.
	CPUCores         float64    `json:"cpu_cores"`
	CPUPerDeliveryUs float64    `json:"cpu_us_per_delivery"`
	NumCPU           int        `json:"num_cpu"`
	GoMaxProcs       int        `json:"gomaxprocs"`
	LoadAvg          [3]float64 `json:"load_avg"`
	LoadBefore       float64    `json:"load_avg_1m_before"`
}

// Relay starts a plain TCP relay on 127.0.0.1 in this process, runs the
// pairs workload through it and returns what it measured. Of cfg it uses
// Users, Window (closed loop) or Rate (open loop), Duration, Warmup,
// BodySize and the progress fields, with Run's defaults; it refuses what
// only a server run has (Server, groups, the memory store, a child
// server). It returns an error when ctx ends, a connection fails, or the
// messages sent are not all acknowledged and delivered within 10s of the
// end.
func Relay(ctx context.Context, cfg Config) (*RelayResult, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Workload != Pairs:
		return nil, errors.New("bench: the relay runs the pairs workload only")
	case cfg.Server != "" || len(cfg.ServerCommand) > 0 || cfg.Store != "pebble":
		return nil, errors.New("bench: the relay is its own server: no server, server process or store")
	}
	loadBefore := loadAvg()[0]
	srv, err := startRelay(cfg.Users, cfg.Unbatched)
	if err != nil {
		return nil, err
	}
	r := &relayRun{cfg: cfg, lat: newShardedHist(), pad: make([]byte, cfg.BodySize-16)}
	for i := range r.pad {
		r.pad[i] = 'x'
	}
	for _, c := range []*counter{&r.sent, &r.sentWin, &r.acked, &r.delivered, &r.deliveredWn} {
		*c = newCounter(cfg.Users)
	}
	p := newProgress(cfg.Progress, cfg.Terminal)
	p.note(fmt.Sprintf("relaying %d users through a plain TCP relay on %s (no storage)", cfg.Users, srv.ln.Addr()))

	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var senders, receivers sync.WaitGroup
	// Closing the clients' ends ends their goroutines and, with EOF, the
	// relay's; the relay then closes whatever is left.
	defer func() {
		stopSending()
		r.stopping.Store(true)
		for _, u := range r.users {
			u.c.Close()
		}
		senders.Wait()
		receivers.Wait()
		srv.close()
	}()

	var d net.Dialer
	for i := range cfg.Users {
		c, err := d.DialContext(ctx, "tcp", srv.ln.Addr().String())
		if err != nil {
			return nil, fmt.Errorf("bench: relay: connect: %w", err)
		}
		u := &relayUser{idx: i, c: c, free: make(chan struct{}, cfg.Window)}
		r.users = append(r.users, u)
		for range cfg.Window {
			u.free <- struct{}{}
		}
		hello := binary.BigEndian.AppendUint32([]byte{0, 0, 0, 5, frameHello}, uint32(i))
		if _, err := c.Write(hello); err != nil {
			return nil, fmt.Errorf("bench: relay: hello: %w", err)
		}
	}
	// Sending starts once the relay knows every pair, so that no send
	// waits for its peer to connect.
	readyBy := time.NewTimer(10 * time.Second)
	defer readyBy.Stop()
	select {
	case <-srv.ready:
	case <-readyBy.C:
		return nil, errors.New("bench: relay: connections not all taken within 10s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	r.epoch = time.Now()
	r.warmNs = int64(cfg.Warmup)
	r.endNs = int64(cfg.Warmup + cfg.Duration)
	for _, u := range r.users {
		receivers.Go(func() { r.receive(u) })
		if cfg.Rate > 0 {
			senders.Go(func() { r.sendOnSchedule(sendCtx, u) })
		} else {
			senders.Go(func() { r.send(sendCtx, u) })
		}
	}
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	defer progressWG.Wait()
	defer close(progressDone)
	progressWG.Go(func() {
		showProgress(p, progressDone, ticks{every: cfg.ProgressInterval, now: r.now, warmNs: r.warmNs, endNs: r.endNs,
			sent: &r.sent, delivered: &r.delivered, lat: r.lat, errs: r.outOfOrder.Load})
	})

	if !sleepUntil(ctx, r.epoch, r.warmNs) {
		return nil, ctx.Err()
	}
	cpuStart := cputime.Self()
	if !sleepUntil(ctx, r.epoch, r.endNs) {
		return nil, ctx.Err()
	}
	cpuEnd := cputime.Self()
	stopSending()
	senders.Wait()

	// Wait for the answers and deliveries of the last sends, so that the
	// latencies of the window's last messages are in, and none is missing.
	drainBy := time.Now().Add(relayDrain)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		sent := r.sent.load()
		if r.acked.load() == sent && r.delivered.load() == sent {
			break
		}
		if err := r.err(); err != nil {
			return nil, err
		}
		if time.Now().After(drainBy) {
			return nil, fmt.Errorf("bench: relay: of %d messages sent, %d acknowledged and %d delivered after %v",
				sent, r.acked.load(), r.delivered.load(), relayDrain)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	// The receivers flush their last latencies as they end.
	r.stopping.Store(true)
	for _, u := range r.users {
		u.c.Close()
	}
	receivers.Wait()

	res := &RelayResult{
		Workload:        "relay",
		Users:           cfg.Users,
		Loop:            "closed",
		Unbatched:       cfg.Unbatched,
		Window:          cfg.Window,
		BodySize:        cfg.BodySize,
		DurationS:       cfg.Duration.Seconds(),
		WarmupS:         cfg.Warmup.Seconds(),
		Sent:            r.sentWin.load(),
		Delivered:       r.deliveredWn.load(),
		DeliveredPerSec: float64(r.deliveredWn.load()) / cfg.Duration.Seconds(),
		OutOfOrder:      r.outOfOrder.Load(),
		CPUCores:        (cpuEnd - cpuStart).Seconds() / cfg.Duration.Seconds(),
		NumCPU:          runtime.NumCPU(),
		GoMaxProcs:      runtime.GOMAXPROCS(0),
		LoadAvg:         loadAvg(),
		LoadBefore:      loadBefore,
	}
	if cfg.Rate > 0 {
		res.Loop, res.Window, res.Rate = "open", 0, cfg.Rate
	}
	if res.Delivered > 0 {
		res.CPUPerDeliveryUs = usPer(cpuEnd-cpuStart, res.Delivered)
	}
	h := r.lat.merged()
	res.P50Ms, res.P99Ms, res.P999Ms = ms(h, 50), ms(h, 99), ms(h, 99.9)
	res.MaxMs = float64(h.Max()) / 1000
	return res, nil
}

// relayRun is the load generator's shared state.
type relayRun struct {
	cfg    Config
	users  []*relayUser
	pad    []byte    // a body's padding, read only
	epoch  time.Time // sending starts; send times are nanoseconds since
	warmNs int64     // the measured window: [warmNs, endNs) since epoch
	endNs  int64

	sent        counter // every send
	sentWin     counter // of which sent in the measured window
	acked       counter
	delivered   counter
	deliveredWn counter // of which delivered in the measured window
	outOfOrder  atomic.Int64
	lat         *shardedHist

	stopping atomic.Bool // connections are being closed: their errors are ours
	firstErr atomic.Pointer[error]
}

// relayUser is one user's connection. Its sender owns the writing side,
// its receiver the reading side.
type relayUser struct {
	idx  int
	c    net.Conn
	free chan struct{} // a token per free window slot
}

func (r *relayRun) now() int64 { return int64(time.Since(r.epoch)) }

func (r *relayRun) fail(err error) {
	if !r.stopping.Load() {
		r.firstErr.CompareAndSwap(nil, &err)
	}
}

func (r *relayRun) err() error {
	if p := r.firstErr.Load(); p != nil {
		return fmt.Errorf("bench: relay: %w", *p)
	}
	return nil
}

// send keeps Window sends in flight until the end of the measured window
// or ctx: it buffers sends while slots are free and writes them out when
// none is, so that a batch goes out per wait, as the Go client's do;
// unbatched, it writes each send out at once.
func (r *relayRun) send(ctx context.Context, u *relayUser) {
	w := bufio.NewWriterSize(u.c, relayBufSize)
	defer func() {
		if err := w.Flush(); err != nil {
			r.fail(fmt.Errorf("user %d: send: %w", u.idx, err))
		}
	}()
	for seq := uint64(0); ; seq++ {
		select {
		case <-u.free:
		default:
			if err := w.Flush(); err != nil {
				return
			}
			select {
			case <-u.free:
			case <-ctx.Done():
				return
			}
		}
		now := r.now()
		if now >= r.endNs {
			return
		}
		r.buffer(w, u, seq, now)
		if r.cfg.Unbatched {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// sendOnSchedule is send's open loop, on Run's schedule (see openLoop):
// each send is written on its own when due, or at once when late, and
// keeps its due time, so that a stall counts in full.
func (r *relayRun) sendOnSchedule(ctx context.Context, u *relayUser) {
	w := bufio.NewWriterSize(u.c, relayBufSize)
	sch := newSchedule(r.cfg, u.idx, r.endNs)
	defer sch.stop()
	for seq := uint64(0); ; seq++ {
		due, ok := sch.wait(ctx, int(seq), r.now)
		if !ok {
			return
		}
		r.buffer(w, u, seq, due)
		if err := w.Flush(); err != nil {
			r.fail(fmt.Errorf("user %d: send: %w", u.idx, err))
			return
		}
	}
}

// buffer puts the user's send seq, sent at, into w.
func (r *relayRun) buffer(w *bufio.Writer, u *relayUser, seq uint64, at int64) {
	b := w.AvailableBuffer()
	b = binary.BigEndian.AppendUint32(b, uint32(1+r.cfg.BodySize))
	b = append(b, frameSend)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = append(b, r.pad...)
	w.Write(b) // an error sticks, for the next Flush
	r.sent.add(u.idx, 1)
	if at >= r.warmNs {
		r.sentWin.add(u.idx, 1)
	}
}

// receive reads the user's connection until it closes: an ack frees a
// window slot; a deliver is counted, timed when it was sent in the
// measured window, and checked to follow the peer's previous one.
func (r *relayRun) receive(u *relayUser) {
	fr := frameReader{br: bufio.NewReaderSize(u.c, relayBufSize)}
	h := make([]int64, 0, 64)
	defer func() { r.lat.record(u.idx, h) }()
	var next uint64 // the peer's next sequence number
	for {
		p, err := fr.next()
		if err != nil {
			r.fail(fmt.Errorf("user %d: receive: %w", u.idx, err))
			return
		}
		switch {
		case p[0] == frameAck && len(p) == 1:
			r.acked.add(u.idx, 1)
			if r.cfg.Rate > 0 {
				continue // an open loop has no window
			}
			select {
			case u.free <- struct{}{}:
			default:
				r.fail(fmt.Errorf("user %d: an ack beyond the window", u.idx))
				return
			}
		case p[0] == frameDeliver && len(p) == 1+r.cfg.BodySize:
			now := r.now()
			seq := binary.BigEndian.Uint64(p[1:])
			at := int64(binary.BigEndian.Uint64(p[9:]))
			if seq != next {
				r.outOfOrder.Add(1)
			}
			next = seq + 1
			r.delivered.add(u.idx, 1)
			if now >= r.warmNs && now < r.endNs {
				r.deliveredWn.add(u.idx, 1)
			}
			if at >= r.warmNs && at < r.endNs {
				if h = append(h, now-at); len(h) == cap(h) {
					r.lat.record(u.idx, h)
					h = h[:0]
				}
			}
		default:
			r.fail(fmt.Errorf("user %d: unexpected frame %q of %d bytes", u.idx, p[0], len(p)))
			return
		}
	}
}

// relayServer is the relay: a reading goroutine per connection that
// writes each send to the peer's buffered writer and an ack to its own,
// and flushes both once it has read all it has been sent, so that writes
// are batched per read; unbatched, after each frame.
type relayServer struct {
	ln        net.Listener
	unbatched bool
	wg        sync.WaitGroup
	ready     chan struct{} // closed once every user has said hello
	done      chan struct{} // closed by close

	mu     sync.Mutex // guards the 4 following fields
	conns  []net.Conn // every connection accepted, to close
	byUser []*relayConn
	joined int
	closed bool
}

// relayConn is the relay's side of a connection; any connection's reader
// may write to it.
type relayConn struct {
	c  net.Conn
	mu sync.Mutex // guards w
	w  *bufio.Writer
}

func startRelay(users int, unbatched bool) (*relayServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: relay: %w", err)
	}
	s := &relayServer{ln: ln, unbatched: unbatched, ready: make(chan struct{}), done: make(chan struct{}), byUser: make([]*relayConn, users)}
	s.wg.Go(s.accept)
	return s, nil
}

func (s *relayServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.wg.Go(func() { s.serve(&relayConn{c: c, w: bufio.NewWriterSize(c, relayBufSize)}) })
		s.mu.Unlock()
	}
}

// close stops the relay and waits for its goroutines.
func (s *relayServer) close() {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	close(s.done)
	s.ln.Close()
	s.wg.Wait()
}

// join records a user's connection; false when the index is out of range
// or taken.
func (s *relayServer) join(idx int, rc *relayConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < 0 || idx >= len(s.byUser) || s.byUser[idx] != nil {
		return false
	}
	s.byUser[idx] = rc
	if s.joined++; s.joined == len(s.byUser) {
		close(s.ready)
	}
	return true
}

// serve relays one connection's sends until it closes or breaks the
// protocol.
func (s *relayServer) serve(rc *relayConn) {
	defer rc.c.Close()
	fr := frameReader{br: bufio.NewReaderSize(rc.c, relayBufSize)}
	p, err := fr.next()
	if err != nil || len(p) != 5 || p[0] != frameHello {
		return
	}
	idx := int(binary.BigEndian.Uint32(p[1:]))
	if !s.join(idx, rc) {
		return
	}
	// Once all have joined, byUser no longer changes.
	select {
	case <-s.ready:
	case <-s.done:
		return
	}
	peer := s.byUser[idx^1]
	for {
		p, err := fr.next()
		if err != nil || p[0] != frameSend {
			return
		}
		peer.mu.Lock()
		appendFrame(peer.w, frameDeliver, p[1:])
		peer.mu.Unlock()
		rc.mu.Lock()
		appendFrame(rc.w, frameAck, nil)
		rc.mu.Unlock()
		if s.unbatched || !fr.more() {
			peer.flush()
			rc.flush()
		}
	}
}

// flush writes out what is buffered. A write error sticks in the writer;
// the client whose connection it is sees it as its own.
func (rc *relayConn) flush() {
	rc.mu.Lock()
	rc.w.Flush()
	rc.mu.Unlock()
}

// appendFrame buffers a frame, building it in the writer's own buffer.
func appendFrame(w *bufio.Writer, kind byte, body []byte) {
	b := w.AvailableBuffer()
	b = binary.BigEndian.AppendUint32(b, uint32(1+len(body)))
	b = append(b, kind)
	b = append(b, body...)
	w.Write(b)
}

// frameReader reads frames in place from its bufio.Reader, whose buffer
// holds the largest frame: a payload is valid until the next call.
type frameReader struct {
	br   *bufio.Reader
	last int // the last frame's length, still in the buffer
}

// next returns the next frame's payload, at least one byte long.
func (f *frameReader) next() ([]byte, error) {
	f.br.Discard(f.last) // cannot fail: those bytes were peeked
	f.last = 0
	h, err := f.br.Peek(4)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(h))
	if n < 1 || n > maxRelayFrame {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b, err := f.br.Peek(4 + n)
	if err != nil {
		return nil, err
	}
	f.last = 4 + n
	return b[4:], nil
}

// more reports whether bytes beyond the last frame have been read, so
// that flushing can wait for the frames they begin.
func (f *frameReader) more() bool { return f.br.Buffered() > f.last }

// WriteTable prints a relay run's result for people.
func (r *RelayResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("workload", "relay (%d users in %d pairs, through a plain TCP relay in this process: no storage, no WebSocket, no JSON)", r.Users, r.Users/2)
	if r.Unbatched {
		row("writes", "unbatched: every frame in a system call of its own, at both ends")
	}
	if r.Loop == "open" {
		row("load", "open loop, %s messages/s in all, %d-byte bodies", thousands(int64(r.Rate)), r.BodySize)
	} else {
		row("load", "closed loop, %d in flight per user, %d-byte bodies", r.Window, r.BodySize)
	}
	row("measured", "%.1f s after %.1f s of warmup", r.DurationS, r.WarmupS)
	row("sent", "%s", thousands(r.Sent))
	row("delivered", "%s\t%s/s", thousands(r.Delivered), thousands(int64(r.DeliveredPerSec)))
	row("latency", "p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms", r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs)
	row("out of order", "%d", r.OutOfOrder)
	row("cpu", "%.2f cores of %d busy in this process (GOMAXPROCS %d), %.1f µs per delivery", r.CPUCores, r.NumCPU, r.GoMaxProcs, r.CPUPerDeliveryUs)
	row("load average", "%.2f before, %.2f %.2f %.2f after", r.LoadBefore, r.LoadAvg[0], r.LoadAvg[1], r.LoadAvg[2])
	return tw.Flush()
}
