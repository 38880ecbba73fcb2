package wsgateway

import (
	"context"
	"sync"
	"time"
)

// WebSocket close codes of the device protocol.
const (
	closeGoingAway = 1001 // gateway shutting down
	closeTooBig    = 1009 // message beyond MaxMessageBytes
	closeReplaced  = 4000 // a newer connection of the same device took over
	closeRevoked   = 4001 // the device's token was revoked
	closeInternal  = 1011
	// Legacy listener, fleet mode (legacy.go): the first frame named no
	// registered, active device (closePolicy), or the device or its link
	// could not be checked now (closeTryAgain).
	closePolicy   = 1008
	closeTryAgain = 1013
)

// registry holds the open device connections of this gateway: the newest per
// device (older ones are being closed) and all of them for shutdown.
//
// It also remembers the devices this gateway dropped (revoked or deleted
// through its API). A handshake reads the credentials before its connection
// joins the registry, so a drop may sweep the registry in between and miss
// the connection: each connection carries the drop count taken before its
// credentials were read (mark), and add tells when its device was dropped
// after that.
type registry struct {
	mu       sync.Mutex
	byDevice map[string]*deviceConn
	all      map[*deviceConn]struct{}
	// closeCode and closeText are closeAll's, set when it runs: a
	// connection joining later is closed at once with them. empty is
	// closed when the registry turns empty while wait waits. (A WaitGroup
	// would race: a handshake finishing during shutdown adds while wait
	// waits.)
	closeCode int
	closeText string
	empty     chan struct{}

	drops   dropMark              // drops so far
	dropped map[string]deviceDrop // device -> its latest drop
}

// dropMark counts the drops of a registry.
type dropMark uint64

type deviceDrop struct {
	mark dropMark
	at   time.Time
}

// dropMemory is how long a drop is remembered: far longer than a handshake
// takes from its credentials to joining the registry (bounded by the store
// and Redis timeouts of a few seconds).
const dropMemory = time.Minute

func newRegistry() *registry {
	return &registry{byDevice: map[string]*deviceConn{}, all: map[*deviceConn]struct{}{}, dropped: map[string]deviceDrop{}}
}

// add registers c as its device's connection and returns the one it
// replaced, and the close code and text c must be closed with at once, or
// 0: closeRevoked when its device was dropped after c's mark, closeAll's
// when it ran during c's handshake (the gateway is shutting down).
func (r *registry) add(c *deviceConn) (old *deviceConn, closeWith int, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old = r.byDevice[c.device.ID]
	r.byDevice[c.device.ID] = c
	r.all[c] = struct{}{}
	if d, ok := r.dropped[c.device.ID]; ok && d.mark > c.mark {
		return old, closeRevoked, "token revoked"
	}
	return old, r.closeCode, r.closeText
}

// mark is the drop count, taken before a handshake reads its credentials.
func (r *registry) mark() dropMark {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drops
}

// drop records that the device was dropped and returns its connections.
func (r *registry) drop(device string, now time.Time) []*deviceConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drops++
	r.dropped[device] = deviceDrop{mark: r.drops, at: now}
	var out []*deviceConn
	for c := range r.all {
		if c.device.ID == device {
			out = append(out, c)
		}
	}
	return out
}

// pruneDrops forgets the drops older than dropMemory.
func (r *registry) pruneDrops(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for dev, d := range r.dropped {
		if now.Sub(d.at) > dropMemory {
			delete(r.dropped, dev)
		}
	}
}

// remove forgets c; the device's entry only if it still is c.
func (r *registry) remove(c *deviceConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.all[c]; !ok {
		return
	}
	delete(r.all, c)
	if r.byDevice[c.device.ID] == c {
		delete(r.byDevice, c.device.ID)
	}
	if len(r.all) == 0 && r.empty != nil {
		close(r.empty)
		r.empty = nil
	}
}

// get returns the device's current connection.
func (r *registry) get(device string) *deviceConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byDevice[device]
}

// snapshot returns all connections.
func (r *registry) snapshot() []*deviceConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*deviceConn, 0, len(r.all))
	for c := range r.all {
		out = append(out, c)
	}
	return out
}

// closeAll closes every connection at shutdown; those that join later are
// closed as they join (add).
func (r *registry) closeAll(code int, reason string) {
	r.mu.Lock()
	r.closeCode, r.closeText = code, reason
	r.mu.Unlock()
	for _, c := range r.snapshot() {
		c.close(code, reason)
	}
}

// wait waits until every connection has been removed or ctx ends.
func (r *registry) wait(ctx context.Context) {
	r.mu.Lock()
	if len(r.all) == 0 {
		r.mu.Unlock()
		return
	}
	if r.empty == nil {
		r.empty = make(chan struct{})
	}
	empty := r.empty
	r.mu.Unlock()
	select {
	case <-empty:
	case <-ctx.Done():
	}
}

// orphanLinks are links of this instance whose connection is gone but whose
// removal failed (Redis was unreachable). No other gateway sweeps them while
// this instance's heartbeat lives, so the heartbeat loop retries them.
type orphanLinks struct {
	mu sync.Mutex
	m  map[string]string // device -> link
}

func (o *orphanLinks) add(device, link string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]string{}
	}
	o.m[device] = link
}

// putBack re-adds an orphan whose removal failed again, unless a newer one
// of the device was added meanwhile.
func (o *orphanLinks) putBack(device, link string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]string{}
	}
	if _, ok := o.m[device]; !ok {
		o.m[device] = link
	}
}

// take returns the orphans and forgets them; putBack what fails again.
func (o *orphanLinks) take() map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.m
	o.m = nil
	return m
}
