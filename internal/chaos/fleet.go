package chaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/devclient"
	"github.com/devtrack/devtrack/internal/protocol"
)

// Fleet is a set of devices, each a devclient.Client (which resends unacked
// frames with the same ids after every reconnect), recording what was sent
// and when each id was acked.
type Fleet struct {
	t       testing.TB
	Devices []*Device
}

// Device is one registered device of a fleet.
type Device struct {
	ID     string
	Token  string
	client *devclient.Client
	cancel context.CancelFunc
	done   chan struct{}
	seq    int

	mu      sync.Mutex
	sent    int
	acked   map[string]time.Time // id -> when the ack arrived
	refused map[string]string    // id -> error code (refused for good)
	up      atomic.Bool
	stopped atomic.Bool
}

// NewFleet registers n devices named prefix-NNN with devtrack device add and
// connects them to the gateway at base (http://host:port).
func (c *Cluster) NewFleet(prefix string, n int) *Fleet {
	c.T.Helper()
	f := &Fleet{t: c.T}
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		tok := lastLine(c.CLI("device", "add", id, "--group", "chaos"))
		f.Devices = append(f.Devices, &Device{ID: id, Token: tok, acked: map[string]time.Time{}, refused: map[string]string{}})
	}
	return f
}

// Connect starts every device's client against the gateway at base.
func (f *Fleet) Connect(base string) {
	for _, d := range f.Devices {
		d.Connect(f.t, base)
	}
}

// Connect starts the device's client; it stops at Disconnect or the end of the test.
func (d *Device) Connect(t testing.TB, base string) {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	d.client = devclient.New(devclient.Config{
		URL:        "ws" + base[len("http"):] + "/ws/device",
		Token:      d.Token,
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: 2 * time.Second,
		RetryAfter: 300 * time.Millisecond,
		OnAck: func(id string, _ time.Duration) {
			d.mu.Lock()
			d.acked[id] = time.Now()
			d.mu.Unlock()
		},
		OnError: func(e devclient.FrameError) {
			d.mu.Lock()
			d.refused[e.ID] = e.Code
			d.mu.Unlock()
		},
		OnState: func(up bool, _ error) { d.up.Store(up) },
	})
	go func() {
		defer close(d.done)
		_ = d.client.Run(ctx)
	}()
	t.Cleanup(d.Disconnect)
}

// Disconnect closes the device's connection (a normal close) and stops it.
func (d *Device) Disconnect() {
	if d.cancel == nil {
		return
	}
	d.stopped.Store(true)
	d.cancel()
	<-d.done
	d.up.Store(false)
}

// Connected reports whether the device's socket is up.
func (d *Device) Connected() bool { return d.up.Load() }

// Send queues n frames with fresh ids (every tenth a log, the rest locations).
func (d *Device) Send(n int) {
	for range n {
		d.mu.Lock()
		d.seq++
		seq := d.seq
		d.mu.Unlock()
		id := fmt.Sprintf("m%06d", seq)
		fr := devclient.Frame{Type: protocol.TypeLocation, ID: id,
			Data: map[string]any{"lat": 31.2 + float64(seq%1000)/10000, "lng": 121.47, "speed": 3.5}}
		if seq%10 == 0 {
			fr = devclient.Frame{Type: protocol.TypeLog, ID: id,
				Data: map[string]any{"level": "info", "message": "chaos frame " + id}}
		}
		if _, err := d.client.Send(fr); err == nil {
			d.mu.Lock()
			d.sent++
			d.mu.Unlock()
		}
	}
}

// Pending is the number of frames sent and not acked yet.
func (d *Device) Pending() int { return d.client.Pending() }

// SendAll queues n frames on every device.
func (f *Fleet) SendAll(n int) {
	for _, d := range f.Devices {
		d.Send(n)
	}
}

// Stream sends rate frames per second in total, spread over the devices in
// batches every 50 ms, until ctx ends. It returns once ctx has ended.
func (f *Fleet) Stream(ctx context.Context, rate int) {
	per := max(1, rate/20/len(f.Devices))
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.SendAll(per)
		}
	}
}

// StreamBackground runs Stream in a goroutine; the returned stop function
// ends it and waits.
func (f *Fleet) StreamBackground(rate int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Stream(ctx, rate) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	f.t.Cleanup(stop)
	return stop
}

// WaitAcked waits up to timeout until no connected device has unacked
// frames (a disconnected device's are never acked); it returns how many are
// still unacked.
func (f *Fleet) WaitAcked(timeout time.Duration) int {
	left := 0
	_ = poll(timeout, func() error {
		left = 0
		for _, d := range f.Devices {
			if d.client != nil && !d.stopped.Load() {
				left += d.Pending()
			}
		}
		if left > 0 {
			return fmt.Errorf("%d unacked", left)
		}
		return nil
	})
	return left
}

// Sent is the number of frames queued on all devices.
func (f *Fleet) Sent() int {
	n := 0
	for _, d := range f.Devices {
		d.mu.Lock()
		n += d.sent
		d.mu.Unlock()
	}
	return n
}

// Acked returns every acked frame as "device/id" with the time of its ack.
func (f *Fleet) Acked() map[string]time.Time {
	out := map[string]time.Time{}
	for _, d := range f.Devices {
		d.mu.Lock()
		for id, at := range d.acked {
			out[d.ID+"/"+id] = at
		}
		d.mu.Unlock()
	}
	return out
}

// Refused counts frames refused for good, by code.
func (f *Fleet) Refused() map[string]int {
	out := map[string]int{}
	for _, d := range f.Devices {
		d.mu.Lock()
		for _, code := range d.refused {
			out[code]++
		}
		d.mu.Unlock()
	}
	return out
}

// IDs are the device ids.
func (f *Fleet) IDs() []string {
	ids := make([]string, len(f.Devices))
	for i, d := range f.Devices {
		ids[i] = d.ID
	}
	return ids
}

// Disconnect stops every device.
func (f *Fleet) Disconnect() {
	for _, d := range f.Devices {
		d.Disconnect()
	}
}
