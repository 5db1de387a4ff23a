//go:build linux

package ws

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// poller watches parked sockets (see sock) with one epoll instance for the
// whole process, so that an idle session needs no goroutine. Each socket is
// registered one-shot (a stale or spurious wake only makes its session
// read, find nothing and park again): one readiness (bytes, a hangup or an error) wakes
// it once, and its session parks it again when it is idle again. The epoll
// instance is itself watched by the runtime's netpoller, so the poller's
// one goroutine holds no thread while it waits.
type poller struct {
	fd  int
	raw syscall.RawConn

	mu     sync.Mutex
	parked map[uint64]*sock // the sockets parked at least once, until closed
}

var (
	pollerOnce sync.Once
	thePoller  *poller // nil when no poller could be made
)

func getPoller() *poller {
	pollerOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return
		}
		// Nonblocking, so os registers it with the runtime's netpoller.
		raw, err := os.NewFile(uintptr(fd), "ws-poller").SyscallConn()
		if err != nil {
			return
		}
		p := &poller{fd: fd, raw: raw, parked: make(map[uint64]*sock)}
		go p.loop()
		thePoller = p
	})
	return thePoller
}

func (p *poller) loop() {
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		err := p.raw.Read(func(uintptr) bool {
			for {
				var err error
				n, err = syscall.EpollWait(p.fd, events, 0)
				if err != syscall.EINTR {
					return n > 0
				}
			}
		})
		if err != nil {
			// Cannot happen: the file is never closed, and it has no
			// deadline.
			panic("ws: poller: " + err.Error())
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

// pollable returns the file descriptor access of nc when the poller can
// watch it, and nil otherwise.
func pollable(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok || getPoller() == nil {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// pollerAdd puts s in the poller's table, where the poller finds it by the
// id its events carry. s.raw is not nil.
func pollerAdd(s *sock) {
	p := thePoller
	p.mu.Lock()
	p.parked[s.id] = s
	p.mu.Unlock()
}

// pollerForget takes s out of the poller's table once it is closed (which
// removed its registration from the epoll instance).
func pollerForget(s *sock) {
	p := thePoller
	p.mu.Lock()
	delete(p.parked, s.id)
	p.mu.Unlock()
}

// pollerArm registers s for one wake. It is in the poller's table.
func pollerArm(s *sock) error {
	p := thePoller
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
		cerr = syscall.EpollCtl(p.fd, op, int(fd), &ev)
		if cerr == nil {
			s.added = true
		}
	})
	if err == nil && cerr != nil {
		err = os.NewSyscallError("epoll_ctl", cerr)
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
