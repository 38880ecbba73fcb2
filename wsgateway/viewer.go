package wsgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/storage"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Viewer send queue bounds: a viewer with viewerQueue messages queued gets
// the latest location per device instead of every message (coalesced), and
// loses other messages. The bound is half a second of a device sending 2,000
// messages a second: a viewer that reads keeps far below it even when the
// gateway's CPU stalls for a moment, and an empty queue costs nothing (a
// slice, viewer_writer.go). Whatever is queued or coalesced counts against
// the viewer's pending bytes (Config.ViewerMaxPendingBytes); a viewer past
// them is a slow consumer and is closed, as nats-server does: it has stopped
// reading, and holding more for it only costs the gateway memory.
const viewerQueue = 1024

// keepQueue is the most queue capacity an idle viewer keeps.
const keepQueue = 16

// lookupEach is the most requested devices looked up one by one; a larger
// subscribe reads the user's visible devices once instead.
const lookupEach = 32

// WebSocket close codes of the viewer protocol, in devtrack's 4000 range
// beside the device ones (registry.go).
const (
	closeViewerRevoked = 4001 // the user was revoked or deleted (as closeRevoked for devices)
	closeSlowConsumer  = 4008 // pending bytes passed ViewerMaxPendingBytes
)

// closeReason is why the gateway ends a viewer's socket: the close frame's
// code and text, and the label of devtrack_gateway_viewers_closed_total.
// The zero value closes without a frame (the peer is gone already).
type closeReason struct {
	code  int
	text  string
	label string
}

func (r closeReason) Error() string { return strconv.Itoa(r.code) + " " + r.text }

var (
	errSlowConsumer  = closeReason{closeSlowConsumer, "slow consumer: too many bytes pending", "slow_consumer"}
	errViewerRevoked = closeReason{closeViewerRevoked, "credentials revoked", "revoked"}
)

// viewerUpgrader accepts any Origin: authUser has already refused a session
// cookie from another origin, and a token is something a cross-site page
// cannot send on the user's behalf.
// Its read buffer is small (requests are small; a larger one is read
// through it), and it has a write buffer pool that is never drawn from
// (viewer_writer.go writes the frames).
var viewerUpgrader = websocket.Upgrader{
	ReadBufferSize:  512,
	WriteBufferPool: gorillaWriteBufs,
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

// viewer is one /ws/live connection: a reader goroutine (serveLive's)
// handling subscriptions, and a writer goroutine while something is queued
// (viewer_writer.go); the reader waits for the writer before it returns.
// Only the writer writes data frames and closes the socket.
type viewer struct {
	g     *Gateway
	user  storage.User
	stamp string // userStamp(user) at the handshake; credentialsLoop compares
	// session is the id of the web session the socket was opened with, ""
	// for a token; pwAt the user's PasswordChangedAt the session holds: a
	// password change ends the session and so the socket (endStaleSession).
	session string
	pwAt    atomic.Int64

	// Reader goroutine only.
	subs    map[string]struct{} // devices watched
	limiter *rate.Limiter       // subscribe and unsubscribe requests

	pending atomic.Int64 // bytes queued or coalesced, not yet written

	// accept, if not nil, picks the live messages the viewer gets: a share
	// link's viewer (share.go) takes positions and presence, never logs or
	// command results.
	accept func(msg []byte) bool

	mu      sync.Mutex
	ws      *websocket.Conn   // set by start, once upgraded; read under mu until then
	queue   [][]byte          // messages to write, in order; live ones up to viewerQueue
	spare   [][]byte          // the other queue array, while a round is written
	latest  map[string][]byte // device -> newest location not queued (queue full)
	writing bool              // a writer goroutine runs (or has finished the socket)
	closed  bool              // set with done
	ping    *time.Timer       // PingPeriod: asks the writer for a ping
	pingDue bool
	pong    []byte // payload of the ping to answer
	pongDue bool
	writers sync.WaitGroup
	// writeDeadline is the socket's write deadline as the writer last set
	// it (refreshWriteDeadline). Writer only: one writer runs at a time,
	// and v.mu orders one after the next.
	writeDeadline time.Time

	done    chan struct{}
	closing sync.Once
	reason  closeReason // set once, before done is closed
}

// newViewer is a viewer of user, not yet upgraded (start).
func newViewer(g *Gateway, user storage.User) *viewer {
	return &viewer{g: g, user: user, subs: map[string]struct{}{}, done: make(chan struct{})}
}

// start hands the upgraded socket to the viewer and starts its ping timer.
func (v *viewer) start(ws *websocket.Conn) {
	ws.SetPingHandler(v.answerPing)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ws = ws
	if v.closed {
		v.wakeLocked() // closed before the upgrade: the writer ends the socket
		return
	}
	v.ping = time.AfterFunc(v.g.cfg.PingPeriod, v.pingTick)
	if len(v.queue) > 0 {
		v.wakeLocked()
	}
}

func (g *Gateway) serveLive(w http.ResponseWriter, r *http.Request) {
	u, err := g.authUser(r)
	if err != nil {
		var he *httpError
		errors.As(err, &he)
		writeError(w, he.status, he.code, he.msg)
		return
	}
	initial, ok, err := handshakeSubscribe(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	v := newViewer(g, u)
	v.stamp, v.session = userStamp(u), sessionOf(r)
	v.limiter = rate.NewLimiter(rate.Limit(g.cfg.ViewerSubscribeRate), g.cfg.ViewerSubscribeBurst)
	v.pwAt.Store(u.PasswordChangedAt)
	if !g.viewers.add(v, g.cfg.ViewerMaxSockets) {
		writeError(w, http.StatusTooManyRequests, protocol.CodeTooManyConnections,
			fmt.Sprintf("user %q already has %d live sockets open on this gateway, the most allowed", u.Name, g.cfg.ViewerMaxSockets))
		return
	}
	ws, err := viewerUpgrader.Upgrade(w, r, nil)
	if err != nil {
		g.viewers.remove(v)
		return
	}
	v.start(ws)
	g.hub.join(v)
	if ok {
		// As if it were the socket's first frame: same checks, same
		// answers (forbidden, snapshot), same share of the rate limit.
		v.limiter.Allow()
		v.subscribe(initial)
	}
	// The reader runs on a goroutine of its own rather than on net/http's,
	// which would keep the request, the connection's 4 KB read and write
	// buffers and the stack grown by the subscribe for as long as the
	// socket is open; Serve waits for it.
	if !g.goBG(func() {
		defer v.end()
		v.readLoop()
	}) {
		v.closeWith(closeReason{closeGoingAway, "gateway shutting down", ""})
		v.end()
	}
}

// end forgets the viewer once its reader is done, closes it and waits for
// its writer.
func (v *viewer) end() {
	v.g.hub.removeAll(v)
	v.g.viewers.remove(v)
	v.close()
	v.writers.Wait()
}

// handshakeSubscribe reads the subscribe-on-connect parameters of a
// /ws/live handshake, for clients that cannot send a frame (a tool that
// only reads, a ReconnectingWebSocket that would lose a subscribe at every
// reconnect): ?subscribe=d1,d2 (repeatable) and ?all=1 (or true). ok is
// false when the handshake names none.
func handshakeSubscribe(r *http.Request) (req viewerRequest, ok bool, err error) {
	q := r.URL.Query()
	req.Type = "subscribe"
	switch a := q.Get("all"); a {
	case "":
	case "1", "true":
		req.All, ok = true, true
	case "0", "false":
	default:
		return req, false, fmt.Errorf("all must be 1 or 0, not %q", a)
	}
	for _, list := range q["subscribe"] {
		for _, id := range strings.Split(list, ",") {
			if id = strings.TrimSpace(id); id != "" {
				req.Devices = append(req.Devices, id)
				ok = true
			}
		}
	}
	return req, ok, nil
}

// close ends the viewer without a close frame.
func (v *viewer) close() { v.closeWith(closeReason{}) }

// closeWith ends the viewer: the writer sends the close frame of r (if any)
// and closes the socket, which ends the reader. It never blocks, so the hub
// may call it from a fan-out.
func (v *viewer) closeWith(r closeReason) {
	v.closing.Do(func() {
		v.reason = r
		close(v.done)
		if r.label != "" {
			viewersClosed.WithLabelValues(r.label).Inc()
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		v.closed = true
		if v.ws == nil {
			return // start will see closed
		}
		v.ping.Stop()
		if r.code == closeSlowConsumer {
			// The writer is likely stuck on a full socket: end that write now
			// rather than after WriteWait.
			_ = v.ws.NetConn().SetWriteDeadline(time.Now())
		}
		v.wakeLocked() // the writer ends the socket
	})
}

// readLoop reads the client's requests until the socket fails or closes.
func (v *viewer) readLoop() {
	v.ws.SetReadLimit(64 << 10)
	_ = v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait))
	v.ws.SetPongHandler(func(string) error { return v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait)) })
	for {
		_, r, err := v.ws.NextReader()
		if err != nil || !v.readRequest(r) {
			return
		}
	}
}

// readRequest reads the request r and answers it; false ends the reader. It
// is readLoop's work out of readLoop's frame, as for a device
// (deviceConn.readLoop): the request's decoding took 648 bytes of the stack
// that an idle viewer's goroutine holds parked.
func (v *viewer) readRequest(r io.Reader) bool {
	b, err := io.ReadAll(r)
	if err != nil {
		return false
	}
	_ = v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait))
	var req viewerRequest
	if err := json.Unmarshal(b, &req); err != nil {
		v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeInvalidJSON, Message: err.Error()})
		return true
	}
	if req.Type != "subscribe" && req.Type != "unsubscribe" {
		v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeInvalidFrame, Message: "type must be subscribe or unsubscribe"})
		return true
	}
	if !v.limiter.Allow() {
		v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeRateLimited,
			Message: fmt.Sprintf("too many %s requests: at most %g per second; this one was ignored", req.Type, v.g.cfg.ViewerSubscribeRate)})
		return true
	}
	if req.Type == "subscribe" {
		v.subscribe(req)
	} else {
		ids := dedupe(req.Devices)
		for _, id := range ids {
			delete(v.subs, id)
		}
		v.g.hub.remove(v, ids)
	}
	return true
}

// dedupe returns ids without repeats or empty ids, in their first order.
func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, dup := seen[id]; dup || id == "" {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}

// subscribe checks every requested device against the user's groups, joins
// the allowed ones and sends their snapshot, each device once however often
// it was named; refused ones get one forbidden error. A request that would
// leave the socket watching more than ViewerMaxDevices devices is refused
// whole. Its work is bounded: at most one list of the user's devices or
// lookupEach lookups, and one Redis read of the snapshot's devices.
func (v *viewer) subscribe(req viewerRequest) {
	maxDevices := v.g.cfg.ViewerMaxDevices
	ids := dedupe(req.Devices)
	if len(ids) > maxDevices {
		v.tooMany(len(ids))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var allowed, refused []string
	if req.All || len(ids) > lookupEach {
		devs, err := v.g.store.Devices(ctx, groupsOf(v.user))
		if err != nil {
			v.g.log.Warn("live subscribe: list devices", zap.String("user", v.user.Name), zap.Error(err))
			v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeUnavailable, Message: "cannot list devices now"})
			return
		}
		visible := make(map[string]struct{}, len(devs))
		for _, d := range devs {
			visible[d.ID] = struct{}{}
			if req.All {
				allowed = append(allowed, d.ID)
			}
		}
		for _, id := range ids {
			if _, ok := visible[id]; !ok {
				refused = append(refused, id) // unknown and not yours look alike
			} else if !req.All {
				allowed = append(allowed, id)
			}
		}
	} else {
		for _, id := range ids {
			d, err := v.g.store.Device(ctx, id)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				// The store failing is no answer about visibility.
				v.g.log.Warn("live subscribe: look up device", zap.String("user", v.user.Name), zap.Error(err))
				v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeUnavailable, Message: "cannot look up devices now"})
				return
			}
			if err != nil || !maySee(v.user, d) {
				refused = append(refused, id)
				continue
			}
			allowed = append(allowed, id)
		}
	}
	var added []string
	for _, id := range allowed {
		if _, ok := v.subs[id]; !ok {
			added = append(added, id)
		}
	}
	if n := len(v.subs) + len(added); n > maxDevices {
		v.tooMany(n)
		return
	}
	if len(refused) > 0 {
		v.send(map[string]any{"type": "error", "code": protocol.CodeForbidden, "devices": refused,
			"message": "not visible to you: " + strconv.Itoa(len(refused)) + " device(s)"})
	}
	for _, id := range added {
		v.subs[id] = struct{}{}
	}
	// Join, and wait for Redis to confirm the subscriptions, before reading
	// the snapshot: a message between the two arrives twice at worst, never
	// not at all.
	if !awaitSubscribed(ctx, v.g.hub.add(v, added)) {
		v.g.log.Warn("live subscribe: subscription not confirmed in time; snapshot sent anyway", zap.String("user", v.user.Name))
	}
	v.send(map[string]any{"type": "snapshot", "devices": v.g.snapshot(ctx, allowed)})
}

func (v *viewer) tooMany(n int) {
	v.send(protocol.ErrorFrame{Type: protocol.TypeError, Code: protocol.CodeTooManyDevices,
		Message: fmt.Sprintf("subscribe refused: it would watch %d devices, at most %d per connection", n, v.g.cfg.ViewerMaxDevices)})
}

// snapshot is the current state of the devices from Redis, read for those
// devices only.
func (g *Gateway) snapshot(ctx context.Context, devices []string) []snapshotDevice {
	out := make([]snapshotDevice, 0, len(devices))
	if len(devices) == 0 {
		return out
	}
	ctx, cancel := bounded(ctx, g.cfg.RedisTimeout)
	defer cancel()
	states, err := g.presence.DeviceStatesOf(ctx, devices)
	if err != nil {
		g.log.Warn("snapshot: read device states", zap.Int("devices", len(devices)), zap.Error(err))
	}
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

// reserve counts n more pending bytes; past the limit it closes the viewer
// as a slow consumer and reports false.
func (v *viewer) reserve(n int) bool {
	if v.pending.Add(int64(n)) > int64(v.g.cfg.ViewerMaxPendingBytes) {
		v.pending.Add(-int64(n))
		v.closeWith(errSlowConsumer)
		return false
	}
	return true
}

// send queues a control message (snapshot, error) for the viewer, past
// the live messages' bound but not past the pending-bytes limit.
func (v *viewer) send(msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		v.g.log.Error("live: encode message", zap.Error(err))
		return
	}
	if !v.reserve(len(b)) {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		v.pending.Add(-int64(len(b)))
		return
	}
	v.queueLocked(b)
}

// deliver queues a live message without ever blocking the hub: when
// viewerQueue messages are queued already a location replaces the device's
// previous pending one and anything else is dropped.
func (v *viewer) deliver(device string, msg []byte, isLocation bool) {
	if v.accept != nil && !v.accept(msg) {
		return
	}
	if !v.reserve(len(msg)) {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		v.pending.Add(-int64(len(msg)))
		return
	}
	if len(v.queue) < viewerQueue {
		v.queueLocked(msg)
		return
	}
	viewerDropped.Inc()
	if !isLocation {
		v.pending.Add(-int64(len(msg)))
		return
	}
	if old, ok := v.latest[device]; ok {
		v.pending.Add(-int64(len(old)))
	}
	if v.latest == nil {
		v.latest = map[string][]byte{}
	}
	v.latest[device] = msg
	v.wakeLocked()
}

// viewerSet holds the open viewers of this gateway by user: for the
// sockets-per-user cap and for credentialsLoop.
type viewerSet struct {
	mu     sync.Mutex
	byUser map[string]map[*viewer]struct{}
}

func newViewerSet() *viewerSet { return &viewerSet{byUser: map[string]map[*viewer]struct{}{}} }

// add registers v unless its user has max viewers already.
func (s *viewerSet) add(v *viewer, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.byUser[v.user.Name]
	if len(vs) >= max {
		return false
	}
	if vs == nil {
		vs = map[*viewer]struct{}{}
		s.byUser[v.user.Name] = vs
	}
	vs[v] = struct{}{}
	return true
}

func (s *viewerSet) remove(v *viewer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.byUser[v.user.Name]
	delete(vs, v)
	if len(vs) == 0 {
		delete(s.byUser, v.user.Name)
	}
}

// all returns every open viewer.
func (s *viewerSet) all() []*viewer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*viewer
	for _, vs := range s.byUser {
		for v := range vs {
			out = append(out, v)
		}
	}
	return out
}
