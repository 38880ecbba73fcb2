package wsgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// hub fans live messages out to this gateway's viewers. It holds one Redis
// subscription per device that at least one of its viewers watches, not one
// per viewer, and drops it when the last viewer of the device leaves. The
// subscriptions run on the gateway's background context (goBG): they end
// at shutdown at the latest, and Serve waits for them.
type hub struct {
	g  *Gateway
	mu sync.Mutex
	// device -> its viewers and the cancel of its Redis subscription
	subs map[string]*deviceSub
	// every open viewer, for shutdown
	viewers map[*viewer]struct{}
}

type deviceSub struct {
	viewers map[*viewer]struct{}
	cancel  context.CancelFunc
	// subscribed is closed once Redis first confirms the subscription:
	// from then on nothing published on the device's channel is missed.
	subscribed chan struct{}
}

func newHub(g *Gateway) *hub {
	return &hub{g: g, subs: map[string]*deviceSub{}, viewers: map[*viewer]struct{}{}}
}

func (h *hub) join(v *viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.viewers[v] = struct{}{}
}

// closeAll closes every viewer with a close frame (code, reason).
func (h *hub) closeAll(code int, reason string) {
	h.mu.Lock()
	vs := make([]*viewer, 0, len(h.viewers))
	for v := range h.viewers {
		vs = append(vs, v)
	}
	h.mu.Unlock()
	for _, v := range vs {
		_ = v.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		v.close()
	}
}

// add joins the viewer to the devices' subscriptions, making those that do
// not exist yet. It returns what tells when each is confirmed by Redis
// (awaitSubscribed): a snapshot read before that could miss a message
// published in between.
func (h *hub) add(v *viewer, devices []string) []<-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	var pending []<-chan struct{}
	for _, d := range devices {
		s := h.subs[d]
		if s == nil {
			ctx, cancel := context.WithCancel(h.g.bg)
			s = &deviceSub{viewers: map[*viewer]struct{}{}, cancel: cancel, subscribed: make(chan struct{})}
			if !h.g.goBG(func() { h.receive(ctx, d, s.subscribed) }) {
				cancel()
				return pending // shutting down: the viewer is being closed
			}
			h.subs[d] = s
		}
		s.viewers[v] = struct{}{}
		select {
		case <-s.subscribed:
		default:
			pending = append(pending, s.subscribed)
		}
	}
	return pending
}

// awaitSubscribed waits until every subscription of pending is confirmed, or
// ctx ends (Redis unreachable: the snapshot is sent anyway, and the
// subscription delivers from whenever it is made).
func awaitSubscribed(ctx context.Context, pending []<-chan struct{}) bool {
	for _, ch := range pending {
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (h *hub) remove(v *viewer, devices []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range devices {
		h.removeLocked(v, d)
	}
}

// removeAll forgets a viewer that is gone.
func (h *hub) removeAll(v *viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.viewers, v)
	for d := range h.subs {
		h.removeLocked(v, d)
	}
}

func (h *hub) removeLocked(v *viewer, device string) {
	s := h.subs[device]
	if s == nil {
		return
	}
	delete(s.viewers, v)
	if len(s.viewers) == 0 {
		s.cancel()
		delete(h.subs, device)
	}
}

// receive holds the device's subscription until ctx ends, closing
// subscribed at its first confirmation. After a lost connection the
// subscription is renewed and viewers get a fresh snapshot of the device,
// since Redis drops what is published in between; it is read once the new
// subscription is confirmed, off the Redis reader that confirms it.
func (h *hub) receive(ctx context.Context, device string, subscribed chan struct{}) {
	h.g.presence.ReceiveLive(ctx, device, func(msg []byte) {
		h.fanout(device, msg)
	}, func(first bool) {
		if first {
			close(subscribed)
			return
		}
		h.g.goBG(func() {
			snap, _ := json.Marshal(map[string]any{"type": "snapshot", "devices": h.g.snapshot(ctx, []string{device})})
			h.fanout(device, snap)
		})
	})
}

func (h *hub) fanout(device string, msg []byte) {
	// Workers encode "type" first; no need to decode the whole message.
	isLocation := bytes.HasPrefix(msg, []byte(`{"type":"location"`))
	h.mu.Lock()
	s := h.subs[device]
	var vs []*viewer
	if s != nil {
		vs = make([]*viewer, 0, len(s.viewers))
		for v := range s.viewers {
			vs = append(vs, v)
		}
	}
	h.mu.Unlock()
	for _, v := range vs {
		v.deliver(device, msg, isLocation)
	}
}
