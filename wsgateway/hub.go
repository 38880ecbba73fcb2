package wsgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// hub fans live messages out to this gateway's viewers. It holds one Redis
// subscription per device that at least one of its viewers watches, not one
// per viewer, all on one connection (redisq.LiveSubscriber, run by Serve on
// the gateway's background context), and drops it when the last viewer of
// the device leaves.
type hub struct {
	g    *Gateway
	live liveSubscriber
	mu   sync.Mutex
	// device -> its viewers and the confirmation of its subscription
	subs map[string]*deviceSub
	// every open viewer (for shutdown) -> the devices it watches, so that
	// a viewer leaving touches its own subscriptions only: walking every
	// device's, as it once did, made 10,000 viewers closing take a second
	// of CPU under the lock the fan-out needs (quadratic; the connect
	// scenario's profile, 26% of the gateway's CPU).
	viewers map[*viewer]map[string]struct{}
	// devices subscribed again after a lost connection whose viewers are
	// owed a snapshot, and whether a goroutine is sending them
	renew    []string
	renewing bool
}

// liveSubscriber is what the hub needs of redisq.LiveSubscriber.
type liveSubscriber interface {
	Run(ctx context.Context)
	Subscribe(devices []string) []<-chan struct{}
	Unsubscribe(devices []string)
}

type deviceSub struct {
	viewers map[*viewer]struct{}
	// subscribed is closed once Redis first confirms the subscription:
	// from then on nothing published on the device's channel is missed.
	subscribed <-chan struct{}
}

func newHub(g *Gateway) *hub {
	h := &hub{g: g, subs: map[string]*deviceSub{}, viewers: map[*viewer]map[string]struct{}{}}
	h.live = g.presence.NewLiveSubscriber(h.fanout, h.renewed, func(err error) {
		g.log.Warn("live subscriptions: Redis connection lost; subscribing again, and viewers get fresh snapshots", zap.Error(err))
	})
	return h
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
	watched := h.viewers[v]
	if watched == nil {
		watched = map[string]struct{}{}
		h.viewers[v] = watched
	}
	var fresh []string
	var freshSubs []*deviceSub
	var pending []<-chan struct{}
	for _, d := range devices {
		s := h.subs[d]
		if s == nil {
			s = &deviceSub{viewers: map[*viewer]struct{}{}}
			h.subs[d] = s
			fresh, freshSubs = append(fresh, d), append(freshSubs, s)
		} else {
			select {
			case <-s.subscribed:
			default:
				pending = append(pending, s.subscribed)
			}
		}
		s.viewers[v] = struct{}{}
		watched[d] = struct{}{}
	}
	if len(fresh) > 0 {
		for i, ch := range h.live.Subscribe(fresh) {
			freshSubs[i].subscribed = ch
			pending = append(pending, ch)
		}
		liveDevices.Set(float64(len(h.subs)))
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
	var gone []string
	for _, d := range devices {
		gone = h.removeLocked(v, d, gone)
	}
	h.unsubscribeLocked(gone)
}

// removeAll forgets a viewer that is gone.
func (h *hub) removeAll(v *viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var gone []string
	for d := range h.viewers[v] {
		gone = h.removeLocked(v, d, gone)
	}
	delete(h.viewers, v)
	h.unsubscribeLocked(gone)
}

// unsubscribeLocked drops the subscriptions of devices no viewer watches
// any more. h.mu held.
func (h *hub) unsubscribeLocked(gone []string) {
	if len(gone) == 0 {
		return
	}
	h.live.Unsubscribe(gone)
	liveDevices.Set(float64(len(h.subs)))
}

// removeLocked takes the viewer off the device and appends the device to
// gone if it was the device's last viewer.
func (h *hub) removeLocked(v *viewer, device string, gone []string) []string {
	delete(h.viewers[v], device)
	s := h.subs[device]
	if s == nil {
		return gone
	}
	delete(s.viewers, v)
	if len(s.viewers) == 0 {
		delete(h.subs, device)
		gone = append(gone, device)
	}
	return gone
}

// renewed is called (on the Redis reader) once devices are subscribed again
// after a lost connection: Redis dropped what was published meanwhile, so
// their viewers get a fresh snapshot, read off the reader.
func (h *hub) renewed(devices []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.renew = append(h.renew, devices...)
	if h.renewing {
		return
	}
	h.renewing = h.g.goBG(h.sendRenewed)
}

// renewChunk is how many devices' state one snapshot read of sendRenewed
// takes.
const renewChunk = 500

// sendRenewed sends each renewed device's viewers the device's snapshot
// until none is owed.
func (h *hub) sendRenewed() {
	for {
		h.mu.Lock()
		n := min(len(h.renew), renewChunk)
		devices := h.renew[:n:n]
		h.renew = h.renew[n:]
		if n == 0 {
			h.renew, h.renewing = nil, false
		}
		h.mu.Unlock()
		if n == 0 {
			return
		}
		for _, sd := range h.g.snapshot(h.g.bg, devices) {
			snap, _ := json.Marshal(map[string]any{"type": "snapshot", "devices": []snapshotDevice{sd}})
			h.fanout(sd.Device, snap)
		}
	}
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
