package wsgateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/storage"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Viewer send queue bounds: a viewer whose queue is full gets the latest
// location per device instead of every message (coalesced), and loses other
// messages; a socket write that blocks WriteWait closes it.
const viewerQueue = 256

// viewerUpgrader accepts any Origin: authUser has already refused a session
// cookie from another origin, and a token is something a cross-site page
// cannot send on the user's behalf.
var viewerUpgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// viewerRequest is a client-to-server message of /ws/live.
type viewerRequest struct {
	Type    string   `json:"type"` // subscribe | unsubscribe
	Devices []string `json:"devices"`
	All     bool     `json:"all"`
}

// snapshotDevice is one device in a snapshot message.
type snapshotDevice struct {
	Device   string          `json:"device"`
	Online   bool            `json:"online"`
	LastSeen *time.Time      `json:"last_seen"`
	Location json.RawMessage `json:"location"`
}

// viewer is one /ws/live connection: a reader goroutine handling
// subscriptions and a writer goroutine draining its bounded queue.
type viewer struct {
	g    *Gateway
	ws   *websocket.Conn
	user storage.User
	out  chan []byte
	kick chan struct{} // coalesced locations are waiting

	mu      sync.Mutex
	latest  map[string][]byte // device -> newest location not yet queued
	done    chan struct{}
	closing sync.Once
}

func (g *Gateway) serveLive(w http.ResponseWriter, r *http.Request) {
	u, err := g.authUser(r)
	if err != nil {
		var he *httpError
		errors.As(err, &he)
		writeError(w, he.status, he.code, he.msg)
		return
	}
	ws, err := viewerUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	v := &viewer{g: g, ws: ws, user: u, out: make(chan []byte, viewerQueue), kick: make(chan struct{}, 1),
		latest: map[string][]byte{}, done: make(chan struct{})}
	g.hub.join(v)
	go v.writeLoop()
	v.readLoop()
}

func (v *viewer) close() {
	v.closing.Do(func() {
		close(v.done)
		_ = v.ws.Close()
	})
}

func (v *viewer) readLoop() {
	defer func() {
		v.g.hub.removeAll(v)
		v.close()
	}()
	v.ws.SetReadLimit(64 << 10)
	_ = v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait))
	v.ws.SetPongHandler(func(string) error { return v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait)) })
	for {
		_, b, err := v.ws.ReadMessage()
		if err != nil {
			return
		}
		_ = v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait))
		var req viewerRequest
		if err := json.Unmarshal(b, &req); err != nil {
			v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeInvalidJSON, Message: err.Error()})
			continue
		}
		switch req.Type {
		case "subscribe":
			v.subscribe(req)
		case "unsubscribe":
			v.g.hub.remove(v, req.Devices)
		default:
			v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeInvalidFrame, Message: "type must be subscribe or unsubscribe"})
		}
	}
}

// subscribe checks every requested device against the user's groups, joins
// the allowed ones and sends their snapshot; refused ones get one forbidden error.
func (v *viewer) subscribe(req viewerRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var allowed, refused []string
	if req.All {
		devs, err := v.g.store.Devices(ctx, groupsOf(v.user))
		if err != nil {
			v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeUnavailable, Message: "cannot list devices now"})
			return
		}
		for _, d := range devs {
			allowed = append(allowed, d.ID)
		}
	}
	for _, id := range req.Devices {
		d, err := v.g.store.Device(ctx, id)
		if err != nil || !maySee(v.user, d) {
			refused = append(refused, id) // unknown and not yours look alike
			continue
		}
		allowed = append(allowed, id)
	}
	if len(refused) > 0 {
		v.send(map[string]any{"type": "error", "code": protocol.CodeForbidden, "devices": refused,
			"message": "not visible to you: " + strconv.Itoa(len(refused)) + " device(s)"})
	}
	// Join before reading the snapshot: a message between the two arrives
	// twice at worst, never not at all.
	v.g.hub.add(v, allowed)
	v.send(map[string]any{"type": "snapshot", "devices": v.g.snapshot(ctx, allowed)})
}

// snapshot is the current state of the devices from Redis.
func (g *Gateway) snapshot(ctx context.Context, devices []string) []snapshotDevice {
	states, err := g.presence.DeviceStates(ctx)
	if err != nil {
		g.log.Warn("snapshot", zap.Error(err))
	}
	out := make([]snapshotDevice, 0, len(devices))
	for _, d := range devices {
		st := states[d]
		sd := snapshotDevice{Device: d, Online: st.Link != "", Location: json.RawMessage("null")}
		if loc := locationOf(st.Location); loc != nil {
			sd.Location = loc
		}
		if st.LastSeen > 0 {
			t := time.UnixMilli(st.LastSeen).UTC()
			sd.LastSeen = &t
		}
		out = append(out, sd)
	}
	return out
}

// send queues a control message (snapshot, error) for the viewer.
func (v *viewer) send(msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		return
	}
	select {
	case v.out <- b:
	case <-v.done:
	case <-time.After(v.g.cfg.WriteWait):
		v.close() // a viewer that cannot take a snapshot is hopeless
	}
}

// deliver queues a live message without ever blocking the hub: when the
// queue is full a location replaces the device's previous pending one and
// anything else is dropped.
func (v *viewer) deliver(device string, msg []byte, isLocation bool) {
	select {
	case v.out <- msg:
		return
	default:
	}
	viewerDropped.Inc()
	if !isLocation {
		return
	}
	v.mu.Lock()
	v.latest[device] = msg
	v.mu.Unlock()
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

func (v *viewer) writeLoop() {
	ping := time.NewTicker(v.g.cfg.PingPeriod)
	defer ping.Stop()
	defer v.close()
	write := func(b []byte) bool {
		_ = v.ws.SetWriteDeadline(time.Now().Add(v.g.cfg.WriteWait))
		return v.ws.WriteMessage(websocket.TextMessage, b) == nil
	}
	for {
		select {
		case <-v.done:
			return
		case b := <-v.out:
			if !write(b) {
				return
			}
		case <-v.kick:
			v.mu.Lock()
			pending := v.latest
			v.latest = map[string][]byte{}
			v.mu.Unlock()
			for _, b := range pending {
				if !write(b) {
					return
				}
			}
		case <-ping.C:
			if v.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(v.g.cfg.WriteWait)) != nil {
				return
			}
		}
	}
}
