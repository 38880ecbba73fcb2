package wsgateway

import (
	"net"
	"testing"

	"go.uber.org/zap"
)

// addrConn is a net.Conn that only has a remote address: admit reads
// nothing else.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

func connFrom(ip string) net.Conn {
	return addrConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

// A flood that reconnects as fast as it is shed turns the pool over; a
// client of another address, with one connection, is not shed for being
// the oldest while the flood's address holds more.
func TestAdmissionShedsFromTheAddressHoldingMost(t *testing.T) {
	a := newAdmission(nil, Config{MaxUnauthConns: 10, MaxUnauthConnsPerAddr: -1}, zap.NewNop())
	for range 9 {
		if tc, _, _ := a.admit(connFrom("10.0.0.2")); tc == nil {
			t.Fatal("flood connection refused below the cap")
		}
	}
	probe, _, _ := a.admit(connFrom("10.0.0.1"))
	if probe == nil {
		t.Fatal("probe refused below the cap")
	}
	for i := range 50 {
		tc, shed, reason := a.admit(connFrom("10.0.0.2"))
		if tc == nil || len(shed) != 1 || reason != shedUnauth {
			t.Fatalf("flood connection %d: admitted %v, shed %d (%s); want admitted, one shed", i, tc != nil, len(shed), reason)
		}
		if shed[0] == probe {
			t.Fatalf("flood connection %d shed the probe, the only connection of its address", i)
		}
	}
	if probe.elem == nil {
		t.Fatal("the probe left the pool")
	}

	// Once its own address holds the most, its oldest goes first.
	b := newAdmission(nil, Config{MaxUnauthConns: 4, MaxUnauthConnsPerAddr: -1}, zap.NewNop())
	first, _, _ := b.admit(connFrom("10.0.0.1"))
	b.admit(connFrom("10.0.0.1"))
	b.admit(connFrom("10.0.0.1"))
	b.admit(connFrom("10.0.0.2"))
	if _, shed, _ := b.admit(connFrom("10.0.0.2")); len(shed) != 1 || shed[0] != first {
		t.Fatal("want the oldest of the address holding the most shed")
	}

	// With one connection per address, the oldest of all goes, as before.
	c := newAdmission(nil, Config{MaxUnauthConns: 3, MaxUnauthConnsPerAddr: -1}, zap.NewNop())
	oldest, _, _ := c.admit(connFrom("10.0.0.1"))
	c.admit(connFrom("10.0.0.2"))
	c.admit(connFrom("10.0.0.3"))
	if _, shed, _ := c.admit(connFrom("10.0.0.4")); len(shed) != 1 || shed[0] != oldest {
		t.Fatal("want the oldest shed when no address holds more than one")
	}
}
