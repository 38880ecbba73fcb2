package testutil

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// SlowClients are connections to an HTTP server that never authenticate:
// some trickle a login body one byte per second, the others made one
// request and now idle on their keep-alive connection. They are what a
// slowloris flood, or a crowd of broken clients, does to a gateway's file
// descriptors. Everything is closed when the test ends.
type SlowClients struct {
	mu      sync.Mutex
	conns   []net.Conn
	trickle []net.Conn

	stop chan struct{}
	done chan struct{}
}

// OpenSlowClients opens trickle + idle slow clients to addr (host:port).
// A client the server refuses or closes at once is counted as opened all
// the same: the server decides what to keep, Open tells what it kept.
func OpenSlowClients(t testing.TB, addr string, trickle, idle int) *SlowClients {
	t.Helper()
	s := &SlowClients{stop: make(chan struct{}), done: make(chan struct{})}
	var idlers []net.Conn
	for i := range trickle + idle {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		// A write the server cut short means it shed this client: its right.
		if i < trickle {
			// A login body announced at 200 bytes, sent one byte per second.
			_, _ = fmt.Fprintf(c, "POST /api/v1/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{", addr)
			s.trickle = append(s.trickle, c)
		} else {
			_, _ = fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
			idlers = append(idlers, c)
		}
		s.conns = append(s.conns, c)
	}
	// The idle ones read their answer (if the server gives one soon), then
	// stay on the keep-alive. One deadline for all keeps the flood dense.
	deadline := time.Now().Add(2 * time.Second)
	buf := make([]byte, 4096)
	for _, c := range idlers {
		_ = c.SetReadDeadline(deadline)
		_, _ = c.Read(buf)
	}
	go s.trickleLoop()
	t.Cleanup(s.Close)
	return s
}

func (s *SlowClients) trickleLoop() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		live := s.trickle[:0]
		for _, c := range s.trickle {
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Write([]byte(" ")); err == nil {
				live = append(live, c)
			}
		}
		s.trickle = live
		s.mu.Unlock()
	}
}

// Open returns how many of the connections the server still holds open.
func (s *SlowClients) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	buf := make([]byte, 1)
	for _, c := range s.conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			n++ // nothing to read and not closed
		}
	}
	return n
}

// Close closes every connection and stops the trickling.
func (s *SlowClients) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}
