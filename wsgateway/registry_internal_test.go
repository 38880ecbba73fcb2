package wsgateway

import (
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
	if _, dropped := r.add(conn("d1", before)); !dropped {
		t.Error("marked before the drop: not dropped")
	}
	if _, dropped := r.add(conn("d1", after)); dropped {
		t.Error("marked after the drop: dropped")
	}
	if _, dropped := r.add(conn("d2", before)); dropped {
		t.Error("another device: dropped")
	}
	if got := r.drop("d1", now); len(got) != 2 {
		t.Errorf("drop returned %d connections of d1, want 2", len(got))
	}
	r.pruneDrops(now.Add(dropMemory / 2))
	if _, dropped := r.add(conn("d1", after)); !dropped {
		t.Error("second drop forgotten too early")
	}
	r.pruneDrops(now.Add(dropMemory + time.Second))
	if len(r.dropped) != 0 {
		t.Errorf("%d drops remembered past dropMemory", len(r.dropped))
	}
}
