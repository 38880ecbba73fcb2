package wsgateway

import (
	"context"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// A connection is dropped on joining when its device was dropped after its
// mark, and only then: not for a drop before its mark, another device's
// drop, or a drop forgotten after dropMemory.
func TestRegistryTellsAConnectionItsDeviceWasDroppedDuringItsHandshake(t *testing.T) {
	r := newRegistry()
	now := time.Now()
	conn := func(dev string, mark dropMark) *deviceConn {
		return &deviceConn{device: storage.Device{ID: dev}, mark: mark}
	}
	before := r.mark()
	if got := r.drop("d1", now); len(got) != 0 {
		t.Fatalf("drop of a device without connections returned %d", len(got))
	}
	after := r.mark()
	if _, code, _ := r.add(conn("d1", before)); code != closeRevoked {
		t.Errorf("marked before the drop: close code %d, want %d", code, closeRevoked)
	}
	if _, code, _ := r.add(conn("d1", after)); code != 0 {
		t.Errorf("marked after the drop: close code %d, want none", code)
	}
	if _, code, _ := r.add(conn("d2", before)); code != 0 {
		t.Errorf("another device: close code %d, want none", code)
	}
	if got := r.drop("d1", now); len(got) != 2 {
		t.Errorf("drop returned %d connections of d1, want 2", len(got))
	}
	r.pruneDrops(now.Add(dropMemory / 2))
	if _, code, _ := r.add(conn("d1", after)); code != closeRevoked {
		t.Error("second drop forgotten too early")
	}
	r.pruneDrops(now.Add(dropMemory + time.Second))
	if len(r.dropped) != 0 {
		t.Errorf("%d drops remembered past dropMemory", len(r.dropped))
	}
}

// At shutdown a connection finishing its handshake after closeAll joins
// with closeGoingAway, and wait returns once it has left too: without the
// race of a WaitGroup added to while waited on.
func TestRegistryWaitsForAConnectionJoiningDuringShutdown(t *testing.T) {
	r := newRegistry()
	a := &deviceConn{device: storage.Device{ID: "a"}}
	b := &deviceConn{device: storage.Device{ID: "b"}}
	r.add(a)
	r.mu.Lock()
	r.closeCode, r.closeText = closeGoingAway, "gateway shutting down" // what closeAll sets before closing each connection
	r.mu.Unlock()
	waited := make(chan struct{})
	go func() {
		r.wait(context.Background())
		close(waited)
	}()
	if _, code, text := r.add(b); code != closeGoingAway || text != "gateway shutting down" {
		t.Fatalf("joining during shutdown: close %d %q, want %d", code, text, closeGoingAway)
	}
	r.remove(a)
	select {
	case <-waited:
		t.Fatal("wait returned while b was registered")
	case <-time.After(50 * time.Millisecond):
	}
	r.remove(b)
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return once the registry was empty")
	}
	r.wait(context.Background()) // empty: returns at once
}
