//go:build !linux

package ws

import (
	"errors"
	"net"
	"syscall"
)

// Only Linux has a poller (epoll); elsewhere each session keeps its reading
// goroutine, and reads wait as usual.

func pollable(net.Conn) syscall.RawConn { return nil }

func pollerAdd(*sock) {}

func pollerArm(*sock) error { return errors.ErrUnsupported }

func pollerForget(*sock) {}

func readFD(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
