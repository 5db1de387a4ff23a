//go:build linux

package ws

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// poller watches parked sockets (see sock) with one epoll instance for the
// whole process, so that an idle session needs no goroutine. Each socket is
// registered one-shot (a stale or spurious wake only makes its session
// read, find nothing and park again): one readiness (bytes, a hangup or an
// error) wakes it once, and its session parks it again when it is idle
// again. The epoll instance is itself watched by the runtime's netpoller,
// so the poller's one goroutine holds no thread while it waits.
//
// Each parked socket thus takes two epoll watches, the runtime's and the
// poller's, both counted against fs.epoll.max_user_watches.
type poller struct {
	fd  int
	f   *os.File
	raw syscall.RawConn
	// failed is set for good when the poller can no longer wait: sockets
	// are then neither parked nor handed out to new sessions.
	failed atomic.Bool

	mu     sync.Mutex
	parked map[uint64]*sock // the sockets parked at least once, until closed
}

var (
	pollerOnce sync.Once
	thePoller  *poller // nil when no poller could be made
)

func getPoller() *poller {
	pollerOnce.Do(func() {
		p, err := newPoller()
		if err != nil {
			logPollError("ws: no poller: idle sessions keep their goroutine", "err", err)
			return
		}
		thePoller = p
	})
	return thePoller
}

// newPoller makes a poller and starts its goroutine.
func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	// Nonblocking, so os registers it with the runtime's netpoller.
	f := os.NewFile(uintptr(fd), "ws-poller")
	// A file the netpoller refused has no deadlines, and its reads do not
	// wait: the poller's first wait would fail.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, err
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{fd: fd, f: f, raw: raw, parked: make(map[uint64]*sock)}
	go p.loop()
	return p, nil
}

func (p *poller) loop() {
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		var werr error
		err := p.raw.Read(func(uintptr) bool {
			for {
				n, werr = syscall.EpollWait(p.fd, events, 0)
				if werr != syscall.EINTR {
					return n > 0 || (werr != nil && werr != syscall.EAGAIN)
				}
			}
		})
		if err == nil && werr != nil && werr != syscall.EAGAIN {
			err = os.NewSyscallError("epoll_wait", werr)
		}
		if err != nil {
			// Unexpected (the file is never closed, and has no deadline),
			// but not worth the process.
			p.fail(err)
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			s := p.parked[id]
			p.mu.Unlock()
			if s != nil {
				s.wake()
			}
		}
	}
}

// fail stops parking with p and wakes every socket parked with it, so that
// none is left without a reader: their sessions go on with a goroutine.
func (p *poller) fail(err error) {
	logPollError("ws: poller failed: sessions keep their goroutine from now on", "err", err)
	// Before the sweep: a park that registers after it sees failed (see
	// arm), so no socket is left parked.
	p.failed.Store(true)
	p.mu.Lock()
	socks := make([]*sock, 0, len(p.parked))
	for _, s := range p.parked {
		socks = append(socks, s)
	}
	p.mu.Unlock()
	for _, s := range socks {
		s.wake()
	}
}

// pollable returns the file descriptor access of nc and the poller when
// the poller can watch it, and nils otherwise.
func pollable(nc net.Conn) (syscall.RawConn, *poller) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, nil
	}
	p := getPoller()
	if p == nil || p.failed.Load() {
		return nil, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, nil
	}
	return raw, p
}

// add puts s in the poller's table, where the poller finds it by the id
// its events carry.
func (p *poller) add(s *sock) {
	p.mu.Lock()
	p.parked[s.id] = s
	p.mu.Unlock()
}

// forget takes s out of the poller's table once it is closed (which
// removed its registration from the epoll instance).
func (p *poller) forget(s *sock) {
	p.mu.Lock()
	delete(p.parked, s.id)
	p.mu.Unlock()
}

// arm registers s for one wake. It is in the poller's table.
func (p *poller) arm(s *sock) error {
	if p.failed.Load() {
		return errPollerFailed
	}
	var cerr error
	err := s.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{
			Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
			Fd:     int32(uint32(s.id)),
			Pad:    int32(uint32(s.id >> 32)),
		}
		// Under s.mu: the wake this may cause at once waits for added.
		s.mu.Lock()
		defer s.mu.Unlock()
		op := syscall.EPOLL_CTL_MOD
		if !s.added {
			op = syscall.EPOLL_CTL_ADD
		}
		if cerr = syscall.EpollCtl(p.fd, op, int(fd), &ev); cerr != nil {
			cerr = os.NewSyscallError("epoll_ctl", cerr)
			return
		}
		s.added = true
		if p.failed.Load() {
			// The poller's sweep may have run before this registration.
			cerr = errPollerFailed
		}
	})
	if err == nil {
		err = cerr
	}
	return err
}

// readFD reads from a nonblocking file descriptor.
func readFD(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err == syscall.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}
