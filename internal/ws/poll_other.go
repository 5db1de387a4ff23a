//go:build !linux

package ws

import (
	"errors"
	"net"
	"syscall"
)

// Only Linux has a poller (epoll); elsewhere each session keeps its reading
// goroutine, and reads wait as usual.

type poller struct{}

func pollable(net.Conn) (syscall.RawConn, *poller) { return nil, nil }

func (*poller) add(*sock) {}

func (*poller) arm(*sock) error { return errors.ErrUnsupported }

func (*poller) forget(*sock) {}

func readFD(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
