package wsgateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/time/rate"
)

// deviceUpgrader accepts any Origin: devices authenticate with their token,
// and Origin checks protect browsers only (the viewer socket checks it).
// Compression stays off: an inflated message would escape the read limit.
var deviceUpgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	WriteBufferPool: &sync.Pool{},
	CheckOrigin:     func(*http.Request) bool { return true },
}

var connSeq atomic.Uint64

// deviceConn is one device's WebSocket. Its reader goroutine reads,
// validates and answers at once what needs no Redis (pongs, refusals); good
// frames go to the connection's pusher, which puts everything that arrived
// while its previous push was in flight on the ingest list in one LPUSH and
// acks it. So the reader never waits for Redis: a frame's push deadline
// counts from its arrival (PushTimeout), not from when the frames ahead of
// it were answered, and during a Redis stall every frame is answered within
// PushTimeout. The pusher goroutine exists only while there is something to
// push. Writes from anywhere go through write (send for JSON), one at a time.
type deviceConn struct {
	g       *Gateway
	ws      *websocket.Conn
	fr      framing // how frames are read and answered
	device  storage.Device
	link    string // value in the links hash
	limiter *rate.Limiter
	log     devLogger
	mark    dropMark // the registry's drops before the credentials were read

	// Reader goroutine only (readLoop).
	idle    idleCloser
	renewed time.Time // when the read deadline last moved on

	wmu       sync.Mutex // one writer at a time
	closeOnce sync.Once

	pmu     sync.Mutex
	pending []pendingPush // waiting for the pusher, oldest first
	queued  int           // items and results in pending
	pushing bool          // the pusher goroutine runs
	tasks   sync.WaitGroup
}

// framing is how a device connection reads and answers frames: the device
// protocol's JSON (nativeFraming), or the legacy firmware's (legacyConn in
// legacy.go), an adapter in front of the same handling.
type framing interface {
	// receive handles one message (at most Limits.MaxFrameBytes).
	receive(c *deviceConn, data []byte)
	// ack answers frames that are on the ingest list.
	ack(c *deviceConn, ids []string)
	// refuse answers a refused frame (already counted).
	refuse(c *deviceConn, fe protocol.FrameError)
	// command sends a downlink command.
	command(c *deviceConn, cmd *protocol.Command)
}

// nativeFraming is the device protocol of /ws/device.
type nativeFraming struct{}

func (nativeFraming) receive(c *deviceConn, data []byte) { c.handle(data) }

func (nativeFraming) ack(c *deviceConn, ids []string) {
	n := 24
	for _, id := range ids {
		n += len(id) + 3
	}
	c.write(websocket.TextMessage, appendAck(make([]byte, 0, n), ids))
}

// appendAck appends the ack of ids to b: what json.Marshal makes of
// protocol.Ack, without reflection (an ack per round is on the hot path).
func appendAck(b []byte, ids []string) []byte {
	b = append(b, `{"type":"`+protocol.TypeAck+`","ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as json.Marshal encodes it: as it is, quoted,
// when it holds only printable ASCII that needs no escape, else through
// json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// pongFrame is the answer to a ping frame.
var pongFrame = []byte(`{"type":"` + protocol.TypePong + `"}`)

func (nativeFraming) refuse(c *deviceConn, fe protocol.FrameError) { c.send(fe.Frame()) }

func (nativeFraming) command(c *deviceConn, cmd *protocol.Command) { c.send(cmd) }

// pendingPush is what one message brought: items stamped and encoded for
// the ingest list, and command results to publish.
type pendingPush struct {
	at      time.Time
	raws    [][]byte
	ids     []string
	results []protocol.CommandResult
}

// maxPendingPerConn bounds what a connection may have waiting for Redis;
// beyond it frames are refused as unavailable at once. The rate limit keeps
// a well-behaved device far below it (PushTimeout x FrameRate + FrameBurst).
const maxPendingPerConn = 4 * protocol.DefaultMaxBatch

// authDevice resolves the request's device token. It writes the error
// response (401, or 503 when the store fails) and returns false when refused.
func (g *Gateway) authDevice(w http.ResponseWriter, r *http.Request) (storage.Device, bool) {
	tok := token.FromRequest(r)
	if tok == "" {
		writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "missing device token")
		return storage.Device{}, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	d, err := g.deviceByToken(ctx, token.Hash(tok))
	switch {
	case err == nil:
		authenticated(r)
		return d, true
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrRevoked):
		authFailures.Inc()
		writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "unknown or revoked device token")
	default:
		g.log.Error("device auth", zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the token now")
	}
	return storage.Device{}, false
}

// serveDevice upgrades and returns: the connection's reader runs on a
// goroutine of its own, owned by the registry (Serve waits for it), so
// that an idle connection does not keep the HTTP server's per-request
// state (its 4 KB read buffer, the response's write buffers, the request,
// the handler's stack) for as long as it lives.
func (g *Gateway) serveDevice(w http.ResponseWriter, r *http.Request) {
	mark := g.conns.mark()
	dev, ok := g.authDevice(w, r)
	if !ok {
		return
	}
	if c := g.upgradeDevice(w, r, dev, nativeFraming{}, mark); c != nil {
		go c.readLoop()
	}
}

// newDeviceConn returns the connection state of dev, not yet upgraded;
// mark is the registry's drop count taken before dev's credentials were read.
func (g *Gateway) newDeviceConn(dev storage.Device, fr framing, mark dropMark) *deviceConn {
	return &deviceConn{
		g:       g,
		fr:      fr,
		mark:    mark,
		device:  dev,
		link:    redisq.LinkValue(g.instance, strconv.FormatUint(connSeq.Add(1), 36)),
		limiter: rate.NewLimiter(rate.Limit(g.cfg.FrameRate), g.cfg.FrameBurst),
		log:     devLogger{base: g.log, device: dev.ID},
	}
}

// devLogger is the gateway's logger with the device's id added to each
// entry. It adds it when something is logged, not once per connection: a
// zap logger made With a field holds an encoder clone (its buffer ~1 KB) per
// idle connection.
type devLogger struct {
	base   *zap.Logger
	device string
}

func (l devLogger) with() *zap.Logger { return l.base.With(zap.String("device", l.device)) }

func (l devLogger) Check(level zapcore.Level, msg string) *zapcore.CheckedEntry {
	if l.base.Core().Enabled(level) {
		return l.with().Check(level, msg)
	}
	return nil
}

func (l devLogger) log(level zapcore.Level, msg string, fields []zap.Field) {
	if ce := l.Check(level, msg); ce != nil {
		ce.Write(fields...)
	}
}

func (l devLogger) Debug(msg string, fields ...zap.Field) { l.log(zap.DebugLevel, msg, fields) }
func (l devLogger) Info(msg string, fields ...zap.Field)  { l.log(zap.InfoLevel, msg, fields) }
func (l devLogger) Warn(msg string, fields ...zap.Field)  { l.log(zap.WarnLevel, msg, fields) }
func (l devLogger) Error(msg string, fields ...zap.Field) { l.log(zap.ErrorLevel, msg, fields) }

// openDevice upgrades r to a connection of dev, whose identity the
// handshake proved (a token, a legacy key), and serves it through fr until
// it closes. mark is the registry's drop count taken before the handshake
// read its credentials.
func (g *Gateway) openDevice(w http.ResponseWriter, r *http.Request, dev storage.Device, fr framing, mark dropMark) {
	if c := g.upgradeDevice(w, r, dev, fr, mark); c != nil {
		c.readLoop()
	}
}

// upgradeDevice upgrades r to a connection of dev and registers it
// (opened); readLoop must follow. It returns nil when the request was
// refused (answered already).
func (g *Gateway) upgradeDevice(w http.ResponseWriter, r *http.Request, dev storage.Device, fr framing, mark dropMark) *deviceConn {
	c := g.newDeviceConn(dev, fr, mark)
	// A request that cannot be upgraded must not touch the link of the
	// device's live connection.
	if !upgradeable(r) {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "not a WebSocket handshake (version 13)")
		return nil
	}
	// The link is set before the upgrade so that a device is refused with
	// 503 rather than connected invisibly while Redis is down.
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.PushTimeout)
	old, err := g.presence.SetLink(ctx, dev.ID, c.link)
	cancel()
	if err != nil {
		c.log.Warn("set device link", zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "presence store unavailable")
		return nil
	}
	ws, err := deviceUpgrader.Upgrade(w, r, nil)
	if err != nil {
		c.undoLink(old)
		return nil // the upgrader answered the client
	}
	c.ws = ws
	c.opened(old)
	return c
}

// opened registers the upgraded connection, whose link is set (old is the
// value it replaced), closes the older connection of the device, and
// announces it online. readLoop must follow: it undoes all of it.
func (c *deviceConn) opened(old string) {
	g := c.g
	prev, closeWith, text := g.conns.add(c)
	if prev != nil {
		prev.close(closeReplaced, "replaced by a newer connection")
	}
	// Revoked, deleted or shutting down during the handshake: closed at
	// once; readLoop cleans up.
	if closeWith == closeRevoked {
		c.log.Info("closing device connection: dropped during its handshake")
	}
	if closeWith != 0 {
		c.close(closeWith, text)
	}
	if old != "" && old != c.link {
		g.replaceRemote(c.device.ID, old)
	}
	devicesConnected.Inc()
	// Published beside the reader, which must not wait for Redis; the
	// offline event at close waits for it (tasks), so the order holds.
	c.tasks.Add(1)
	go func() {
		defer c.tasks.Done()
		c.g.presenceChanged(c.device.ID, true)
	}()
	c.log.Debug("device connected", zap.String("link", c.link))
}

// readLoop reads until the connection fails or is closed, then cleans up.
// It is kept to the wait for the next message: an idle device's goroutine
// is parked in it, under gorilla's read, for as long as the socket lives,
// and the garbage collector halves a parked goroutine's stack only while it
// uses under a quarter of it. With the work in readLoop's own frame (320
// bytes) the parked reader used 1,352 bytes, and a stack that had started
// at 8 KB (the runtime starts goroutines at the average stack size, high
// during a burst of handshakes) could never shrink to 4 KB; the frames of
// readMessage and readDone are only on the stack while they run.
func (c *deviceConn) readLoop() {
	defer c.readDone()
	c.readStart()
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.close(closeTooBig, "message too large")
			}
			return
		}
		if !c.readMessage(r) {
			return
		}
	}
}

// readStart sets the read limits and deadlines and starts the idle closer.
func (c *deviceConn) readStart() {
	g := c.g
	c.ws.SetReadLimit(g.cfg.MaxMessageBytes)
	_ = c.ws.SetReadDeadline(time.Now().Add(g.cfg.PongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(g.cfg.PongWait))
	})
	c.idle = c.startIdleCloser() // device_idle.go
	c.renewed = time.Now()
}

// readDone undoes the connection once its reader ends.
func (c *deviceConn) readDone() {
	c.idle.stop()
	c.close(websocket.CloseNormalClosure, "")
	c.tasks.Wait() // the pusher ends within PushTimeout
	c.dropLink()
	c.g.conns.remove(c)
	devicesConnected.Dec()
	c.log.Debug("device disconnected")
}

// readMessage reads the message r and handles it; false ends the reader.
func (c *deviceConn) readMessage(r io.Reader) bool {
	g := c.g
	// The read deadline moves on at most every renewEvery, not at every
	// frame (a runtime timer update each): it stays within renewEvery of
	// PongWait after the last frame.
	renewEvery := min(time.Second, g.cfg.PongWait/16)
	if now := time.Now(); now.Sub(c.renewed) >= renewEvery {
		_ = c.ws.SetReadDeadline(now.Add(g.cfg.PongWait))
		c.renewed = now
	}
	c.idle.reset(g.cfg.DeviceIdleTimeout)
	max := int64(g.cfg.Limits.MaxFrameBytes)
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return false
	}
	if int64(len(data)) > max {
		// Drain the rest (bounded by MaxMessageBytes) and refuse it.
		if _, err := io.Copy(io.Discard, r); err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.close(closeTooBig, "message too large")
			}
			return false
		}
		framesRefused.WithLabelValues(protocol.CodeTooLarge).Inc()
		c.fr.refuse(c, protocol.FrameError{Code: protocol.CodeTooLarge,
			Message: "frame larger than " + strconv.FormatInt(max, 10) + " bytes"})
		return true
	}
	c.fr.receive(c, data)
	return true
}

// handle processes one message: refuses what is bad at once, and hands what
// is good to the pusher, which acks it once Redis confirmed.
func (c *deviceConn) handle(data []byte) {
	g := c.g
	now := time.Now()
	p := g.cfg.Limits.ParseWith(data, now, nil, protocol.Options{DefaultCRS: c.device.CRS})
	for range p.Pings {
		c.write(websocket.TextMessage, pongFrame)
	}
	for _, fe := range p.Errors {
		framesRefused.WithLabelValues(fe.Code).Inc()
		c.fr.refuse(c, fe)
	}
	if len(p.Items) > 0 && !c.limiter.AllowN(now, len(p.Items)) {
		c.refuseAll(p.Items, protocol.CodeRateLimited, "over "+strconv.FormatFloat(g.cfg.FrameRate, 'f', -1, 64)+" frames/s; retry later")
		p.Items = nil
	}
	if len(p.Items) == 0 && len(p.Results) == 0 {
		return
	}
	pp := pendingPush{at: now, results: p.Results}
	if len(p.Items) > 0 {
		var err error
		if pp.raws, pp.ids, err = g.stamp(c.device.ID, p.Items, now); err != nil {
			c.log.Error("encode queue items", zap.Error(err))
			c.refuseAll(p.Items, protocol.CodeInternal, "cannot encode the frame")
			return
		}
	}
	if !c.enqueue(pp) {
		c.refuseAll(p.Items, protocol.CodeUnavailable, "ingest list unavailable; retry later")
	}
}

// enqueue hands pp to the pusher, starting it if it is not running. It
// reports false when too much is waiting for Redis already.
func (c *deviceConn) enqueue(pp pendingPush) bool {
	n := len(pp.raws) + len(pp.results)
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.queued > 0 && c.queued+n > maxPendingPerConn {
		return false
	}
	c.pending = append(c.pending, pp)
	c.queued += n
	if !c.pushing {
		c.pushing = true
		c.tasks.Add(1)
		go c.pushLoop()
	}
	return true
}

// pushLoop pushes what is pending, one LPUSH per round for everything that
// arrived meanwhile, until nothing is left. Each round's deadline is its
// oldest frame's arrival plus PushTimeout.
func (c *deviceConn) pushLoop() {
	defer c.tasks.Done()
	g := c.g
	for {
		c.pmu.Lock()
		round := c.pending
		c.pending, c.queued = nil, 0
		if len(round) == 0 {
			c.pushing = false
			c.pmu.Unlock()
			return
		}
		c.pmu.Unlock()

		deadline := round[0].at.Add(g.cfg.PushTimeout)
		var raws [][]byte
		var ids []string
		var results []protocol.CommandResult
		for _, pp := range round {
			raws = append(raws, pp.raws...)
			ids = append(ids, pp.ids...)
			results = append(results, pp.results...)
		}
		// Frames first: a slow publish of command results must not use
		// up their push deadline.
		if len(raws) > 0 {
			if err := g.pushRaw(deadline, raws); err != nil {
				c.log.Warn("push to ingest list", zap.Int("frames", len(raws)), zap.Error(err))
				framesRefused.WithLabelValues(protocol.CodeUnavailable).Add(float64(len(ids)))
				for _, id := range ids {
					c.fr.refuse(c, protocol.FrameError{ID: id, Code: protocol.CodeUnavailable,
						Message: "ingest list unavailable; retry later"})
				}
			} else {
				c.fr.ack(c, ids)
				observeAcks(round)
			}
		}
		if len(results) > 0 {
			g.commandResults(time.Now().Add(g.cfg.RedisTimeout), c.device.ID, results)
		}
	}
}

// observeAcks records the ack latency of each frame of an acked round.
func observeAcks(round []pendingPush) {
	now := time.Now()
	for _, pp := range round {
		d := now.Sub(pp.at).Seconds()
		for range pp.ids {
			ackSeconds.Observe(d)
		}
	}
}

func (c *deviceConn) refuseAll(items []protocol.Item, code, msg string) {
	framesRefused.WithLabelValues(code).Add(float64(len(items)))
	for _, it := range items {
		c.fr.refuse(c, protocol.FrameError{ID: it.ID, Code: code, Message: msg})
	}
}

// stamp marks the items with the device, receive time and gateway and
// encodes them for the ingest list; it returns them and their ids.
func (g *Gateway) stamp(device string, items []protocol.Item, now time.Time) ([][]byte, []string, error) {
	return protocol.Stamp(device, g.cfg.ID, items, now)
}

// pushRaw puts encoded items on the ingest list, all in the same LPUSH
// (group-committed with what others push meanwhile: pushGroup), giving up
// at deadline.
func (g *Gateway) pushRaw(deadline time.Time, raws [][]byte) error {
	return g.pushes.push(g.queue, deadline, raws)
}

// send writes one JSON message.
func (c *deviceConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.log.Error("encode frame", zap.Error(err))
		return
	}
	c.write(websocket.TextMessage, b)
}

// write writes one message. A failed write closes the connection; the
// reader then ends.
func (c *deviceConn) write(kind int, b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteWait))
	if err := c.ws.WriteMessage(kind, b); err != nil {
		_ = c.ws.Close()
	}
}

// close sends a close frame with code and reason and closes the socket; the
// reader goroutine then cleans up. Safe to call from anywhere, many times.
func (c *deviceConn) close(code int, reason string) {
	c.closeOnce.Do(func() {
		msg := websocket.FormatCloseMessage(code, reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = c.ws.Close()
	})
}

// upgradeable reports whether r is a WebSocket handshake the upgrader will
// accept: GET, Connection/Upgrade headers, version 13 and a key.
func upgradeable(r *http.Request) bool {
	return websocket.IsWebSocketUpgrade(r) && r.Header.Get("Sec-Websocket-Version") == "13" &&
		r.Header.Get("Sec-Websocket-Key") != ""
}

// undoLink takes back the link of a connection that never opened: the
// connection it replaced (old, if any) is named again, and nobody is told
// that the device went offline or came online.
func (c *deviceConn) undoLink(old string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.g.cfg.RedisTimeout)
	defer cancel()
	if _, err := c.g.presence.DeleteLink(ctx, c.device.ID, c.link); err != nil {
		c.log.Warn("undo device link", zap.Error(err))
		c.g.orphans.add(c.device.ID, c.link)
		return
	}
	if old != "" {
		if _, err := c.g.presence.EnsureLink(ctx, c.device.ID, old); err != nil {
			c.log.Warn("restore the replaced device link", zap.Error(err))
		}
	}
}

// dropLink removes the device's link if it still names this connection.
func (c *deviceConn) dropLink() {
	ctx, cancel := context.WithTimeout(context.Background(), c.g.cfg.RedisTimeout)
	defer cancel()
	removed, err := c.g.presence.DeleteLink(ctx, c.device.ID, c.link)
	if err != nil {
		// No other gateway would sweep it while this instance lives.
		c.log.Warn("delete device link; retried at the next heartbeat", zap.Error(err))
		c.g.orphans.add(c.device.ID, c.link)
		return
	}
	if removed {
		// Only the device's current connection going away makes it offline.
		c.g.presenceChanged(c.device.ID, false)
	}
}

// presenceChanged publishes a device's coming or going to its live viewers.
func (g *Gateway) presenceChanged(device string, online bool) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisTimeout)
	defer cancel()
	if err := g.presence.PublishPresence(ctx, device, online); err != nil {
		g.log.Warn("publish presence", zap.String("device", device), zap.Error(err))
	}
}
