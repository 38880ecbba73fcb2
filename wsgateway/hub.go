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
	// every open viewer (for shutdown) -> the devices it watches, so that
	// a viewer leaving touches its own subscriptions only: walking every
	// device's, as it once did, made 10,000 viewers closing take a second
	// of CPU under the lock the fan-out needs (quadratic; the connect
	// scenario's profile, 26% of the gateway's CPU).
	viewers map[*viewer]map[string]struct{}
	// device -> the end of a subscription being torn down (its UNSUBSCRIBE
	// not yet answered). A new subscription to the device waits for it:
	// Redis's answer to the old UNSUBSCRIBE would end the new one too.
	ending map[string]chan struct{}
}

type deviceSub struct {
	viewers map[*viewer]struct{}
	cancel  context.CancelFunc
	// subscribed is closed once Redis first confirms the subscription:
	// from then on nothing published on the device's channel is missed.
	subscribed chan struct{}
	// ended is closed once the subscription has ended and Redis has
	// answered its UNSUBSCRIBE.
	ended chan struct{}
}

func newHub(g *Gateway) *hub {
	return &hub{g: g, subs: map[string]*deviceSub{}, viewers: map[*viewer]map[string]struct{}{}, ending: map[string]chan struct{}{}}
}

func (h *hub) join(v *viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.viewers[v]; !ok {
		h.viewers[v] = map[string]struct{}{}
	}
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
	watched := h.viewers[v]
	if watched == nil {
		// Not joined (a share viewer joins first too; this keeps add safe
		// on its own).
		watched = map[string]struct{}{}
		h.viewers[v] = watched
	}
	for _, d := range devices {
		s := h.subs[d]
		if s == nil {
			ctx, cancel := context.WithCancel(h.g.bg)
			s = &deviceSub{viewers: map[*viewer]struct{}{}, cancel: cancel, subscribed: make(chan struct{}), ended: make(chan struct{})}
			prev, sub := h.ending[d], s
			if !h.g.goBG(func() { h.receive(ctx, d, prev, sub) }) {
				cancel()
				return pending // shutting down: the viewer is being closed
			}
			h.subs[d] = s
		}
		s.viewers[v] = struct{}{}
		watched[d] = struct{}{}
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
	for d := range h.viewers[v] {
		h.removeLocked(v, d)
	}
	delete(h.viewers, v)
}

func (h *hub) removeLocked(v *viewer, device string) {
	delete(h.viewers[v], device)
	s := h.subs[device]
	if s == nil {
		return
	}
	delete(s.viewers, v)
	if len(s.viewers) == 0 {
		s.cancel()
		delete(h.subs, device)
		h.ending[device] = s.ended
	}
}

// receive holds the device's subscription until ctx ends, closing
// subscribed at its first confirmation. After a lost connection the
// subscription is renewed and viewers get a fresh snapshot of the device,
// since Redis drops what is published in between; it is read once the new
// subscription is confirmed, off the Redis reader that confirms it. It
// starts once the device's previous subscription, if any, has ended (prev).
func (h *hub) receive(ctx context.Context, device string, prev <-chan struct{}, s *deviceSub) {
	defer func() {
		h.mu.Lock()
		if h.ending[device] == s.ended {
			delete(h.ending, device)
		}
		h.mu.Unlock()
		close(s.ended)
	}()
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return
		}
	}
	subscribed := s.subscribed
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
