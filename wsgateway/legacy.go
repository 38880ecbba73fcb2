package wsgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/time/rate"
)

// The legacy listener serves firmware that cannot change: it connects
// without a token to any path, sends {"deviceId":"ID","type":N,"data":{...}}
// and expects a text reply per frame. It is an adapter in front of the
// native device connection (deviceConn): a legacy connection has the same
// link, presence, rate limit, push, revocation and commands; only how frames
// are read (legacyCodec.translate, then Limits.Parse) and answered
// (legacyConn) differs.
//
// Who a connection speaks for:
//   - with ?key=KEY (devtrack device legacy-key): the key's device, fixed at
//     the handshake like a token's. A frame naming another deviceId is
//     refused and logged; a wrong key gets 401.
//   - in fleet mode (LegacyConfig.Allow), from an allowed address and
//     without a key: any registered, active device; the first frame with a
//     deviceId binds the connection to it, and later frames must name the
//     same one. Anyone who can connect from those addresses can speak for
//     every device: the allowlist is the whole of the authentication.
// In fleet mode a connection from any other address is refused (403), key
// or not.

// LegacyKeyPrefix starts every legacy firmware key, as dtd_ starts device
// tokens, so that scanners and humans can tell them apart.
const LegacyKeyPrefix = "dtl_"

// DefaultLegacyReply answers each accepted legacy frame.
const DefaultLegacyReply = "log_upload_response"

// DefaultLegacyTypes is the type mapping of LegacyConfig.Types by default:
// type 4 is a log.
func DefaultLegacyTypes() map[int64]string { return map[int64]string{4: protocol.TypeLog} }

// DefaultLegacyLocation names, for each field of a location, the data keys
// of a legacy location frame it is read from by default; the first present
// wins: lat from lat or latitude, lng from lng, lon or longitude, the others
// from their own names.
func DefaultLegacyLocation() map[string][]string {
	return map[string][]string{
		"lat": {"lat", "latitude"}, "lng": {"lng", "lon", "longitude"},
		"accuracy": {"accuracy"}, "speed": {"speed"}, "heading": {"heading"}, "altitude": {"altitude"}, "crs": {"crs"},
	}
}

// LegacyConfig configures the listener for legacy firmware (Config.Legacy).
// Zero values take the documented defaults.
type LegacyConfig struct {
	// Listen is the address of the legacy listener, which accepts WebSocket
	// connections on any path. Empty: no legacy listener.
	Listen string
	// Allow turns on fleet mode when not empty: connections are accepted
	// from these networks only, and there one without ?key= may speak for
	// any registered, active device (its first frame's deviceId binds it).
	// Anyone on those addresses can then speak for any device. Behind a
	// proxy listed in Config.TrustedProxies the client address is taken
	// from X-Forwarded-For. Empty (default): every connection must carry a
	// device's legacy key.
	Allow []netip.Prefix
	// Types maps the numeric type of a legacy frame to what it carries,
	// protocol.TypeLog or protocol.TypeLocation; frames of other types are
	// refused. Default DefaultLegacyTypes (4 is a log).
	Types map[int64]string
	// Location names the data keys each field of a location is read from
	// (lat, lng, accuracy, speed, heading, altitude, crs), the first present
	// winning. A field not named keeps DefaultLegacyLocation's keys.
	Location map[string][]string
	// Reply is the text message that answers each accepted frame (once it
	// is on the ingest list). Default DefaultLegacyReply.
	Reply string
}

func (c *LegacyConfig) setDefaults() error {
	if len(c.Types) == 0 {
		c.Types = DefaultLegacyTypes()
	}
	for n, kind := range c.Types {
		if kind != protocol.TypeLog && kind != protocol.TypeLocation {
			return fmt.Errorf("legacy type %d=%q: want log or location", n, kind)
		}
	}
	loc := DefaultLegacyLocation()
	for field, keys := range c.Location {
		if _, ok := loc[field]; !ok {
			return fmt.Errorf("legacy location field %q: want one of %s", field, strings.Join(legacyLocationFields, ", "))
		}
		if len(keys) == 0 {
			return fmt.Errorf("legacy location field %q: no data key given", field)
		}
		loc[field] = keys
	}
	c.Location = loc
	if c.Reply == "" {
		c.Reply = DefaultLegacyReply
	}
	return nil
}

// ParseLegacyTypes reads a type mapping such as "4=log,5=location" (the
// --legacy-types flag).
func ParseLegacyTypes(list string) (map[int64]string, error) {
	out := map[int64]string{}
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		num, kind, ok := strings.Cut(item, "=")
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		kind = strings.TrimSpace(kind)
		if !ok || err != nil || (kind != protocol.TypeLog && kind != protocol.TypeLocation) {
			return nil, fmt.Errorf("%q: want NUMBER=log or NUMBER=location, e.g. 4=log,5=location", item)
		}
		if _, dup := out[n]; dup {
			return nil, fmt.Errorf("type %d is mapped twice", n)
		}
		out[n] = kind
	}
	return out, nil
}

// ParseLegacyLocation reads the data keys of location fields, such as
// "lat=latitude|lat,lng=longitude|lon" (the --legacy-location flag): for
// each field, the keys to try in order.
func ParseLegacyLocation(list string) (map[string][]string, error) {
	out := map[string][]string{}
	known := DefaultLegacyLocation()
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		field, keys, ok := strings.Cut(item, "=")
		field = strings.TrimSpace(field)
		if _, isField := known[field]; !ok || !isField {
			return nil, fmt.Errorf("%q: want FIELD=KEY[|KEY...] with FIELD one of %s", item, strings.Join(legacyLocationFields, ", "))
		}
		var ks []string
		for _, k := range strings.Split(keys, "|") {
			if k = strings.TrimSpace(k); k != "" {
				ks = append(ks, k)
			}
		}
		if len(ks) == 0 {
			return nil, fmt.Errorf("%q: no data key for %s", item, field)
		}
		out[field] = ks
	}
	return out, nil
}

// ParseLegacyAllow reads a comma-separated list of CIDRs or single
// addresses (the --legacy-allow flag) for LegacyConfig.Allow.
func ParseLegacyAllow(list string) ([]netip.Prefix, error) {
	return parsePrefixes("legacy allow", list)
}

// legacyListener is the handler of the legacy listener.
type legacyListener struct {
	g     *Gateway
	cfg   LegacyConfig
	codec legacyCodec
	reply []byte
	// logs bounds the log lines of refused connections and frames, which a
	// misconfigured fleet would otherwise repeat at every reconnect.
	logs *rate.Limiter
	// keyed counts the open connections opened with a key: only while
	// there are some does the credentials poll look for replaced keys.
	keyed atomic.Int64

	// unbound are fleet-mode sockets waiting for their first frame. They
	// are not in the gateway's registry yet, so shutdown closes and waits
	// for them here.
	mu      sync.Mutex
	closed  bool
	unbound map[*websocket.Conn]struct{}
	wg      sync.WaitGroup
}

func newLegacyListener(g *Gateway, cfg LegacyConfig) *legacyListener {
	return &legacyListener{g: g, cfg: cfg, codec: legacyCodec{types: cfg.Types, location: cfg.Location},
		reply: []byte(cfg.Reply), logs: rate.NewLimiter(5, 20), unbound: map[*websocket.Conn]struct{}{}}
}

// note logs a refusal at info level, within the listener's log budget.
func (l *legacyListener) note(msg string, fields ...zap.Field) {
	if l.logs.Allow() {
		l.g.log.Info(msg, fields...)
	}
}

// ServeHTTP authenticates a legacy connection (key, or fleet-mode address)
// and serves it.
func (l *legacyListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := l.g
	remote := g.clientAddr(r)
	if len(l.cfg.Allow) > 0 && !l.allowed(remote) {
		authFailures.Inc()
		l.note("legacy connection refused: address not in --legacy-allow", zap.String("remote", remote))
		writeError(w, http.StatusForbidden, protocol.CodeForbidden, "address not allowed")
		return
	}
	if key := r.URL.Query().Get("key"); key != "" {
		mark := g.conns.mark()
		dev, k, ok := l.authKey(w, r, key, remote)
		if !ok {
			return
		}
		l.keyed.Add(1)
		defer l.keyed.Add(-1)
		g.openDevice(w, r, dev, &legacyConn{l: l, keyAt: k.IssuedAt}, mark)
		return
	}
	if len(l.cfg.Allow) == 0 {
		authFailures.Inc()
		l.note("legacy connection refused: no ?key=", zap.String("remote", remote))
		writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "missing legacy key (?key=)")
		return
	}
	l.serveFleet(w, r, remote)
}

func (l *legacyListener) allowed(remote string) bool {
	ip, err := netip.ParseAddr(remote)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return slices.ContainsFunc(l.cfg.Allow, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// authKey resolves a legacy key. It writes the error response (401, or 503
// when the store fails) and returns false when refused. Keys are looked up
// in the store at every handshake (no cache: legacy fleets reconnect rarely
// and each lookup is one indexed read).
func (l *legacyListener) authKey(w http.ResponseWriter, r *http.Request, key, remote string) (storage.Device, storage.LegacyKey, bool) {
	g := l.g
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	d, k, err := g.store.DeviceByLegacyKey(ctx, token.Hash(key))
	switch {
	case err == nil:
		authenticated(r)
		return d, k, true
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrRevoked):
		authFailures.Inc()
		l.note("legacy connection refused: unknown or replaced key, or revoked device", zap.String("remote", remote))
		writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "unknown or revoked legacy key")
	default:
		g.log.Error("legacy key auth", zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the key now")
	}
	return storage.Device{}, storage.LegacyKey{}, false
}

// serveFleet serves a fleet-mode connection: upgraded at once, bound to the
// device its first frame names, then served like any device connection
// (the first frame included).
func (l *legacyListener) serveFleet(w http.ResponseWriter, r *http.Request, remote string) {
	g := l.g
	if !upgradeable(r) {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "not a WebSocket handshake (version 13)")
		return
	}
	ws, err := deviceUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the client
	}
	if !l.hold(ws) {
		closeWS(ws, closeGoingAway, "gateway shutting down")
		return
	}
	defer l.release(ws) // after the connection joined the registry (opened)
	mark := g.conns.mark()
	dev, first, ok := l.bind(ws, remote)
	if !ok {
		return
	}
	authenticated(r)
	c := g.newDeviceConn(dev, &legacyConn{l: l}, mark)
	c.ws = ws
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.PushTimeout)
	old, err := g.presence.SetLink(ctx, dev.ID, c.link)
	cancel()
	if err != nil {
		c.log.Warn("set device link", zap.Error(err))
		closeWS(ws, closeTryAgain, "presence store unavailable; try again later")
		return
	}
	c.opened(old)
	c.fr.receive(c, first)
	l.release(ws)
	c.readLoop()
}

// hold registers an unbound socket; false once shutdown began.
func (l *legacyListener) hold(ws *websocket.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.unbound[ws] = struct{}{}
	l.wg.Add(1)
	return true
}

// release forgets an unbound socket (bound or closed); safe to call twice.
func (l *legacyListener) release(ws *websocket.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.unbound[ws]; ok {
		delete(l.unbound, ws)
		l.wg.Done()
	}
}

// closeUnbound closes the sockets waiting for their first frame and makes
// hold refuse new ones; wait then waits for their handlers to hand them to
// the registry or give up.
func (l *legacyListener) closeUnbound() {
	l.mu.Lock()
	l.closed = true
	socks := make([]*websocket.Conn, 0, len(l.unbound))
	for ws := range l.unbound {
		socks = append(socks, ws)
	}
	l.mu.Unlock()
	for _, ws := range socks {
		closeWS(ws, closeGoingAway, "gateway shutting down")
	}
}

func (l *legacyListener) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// bind reads frames until one names a device, within PongWait, and returns
// that device and the frame. An unknown or revoked device closes the socket
// (closePolicy), as does a read error or the deadline.
func (l *legacyListener) bind(ws *websocket.Conn, remote string) (storage.Device, []byte, bool) {
	g := l.g
	ws.SetReadLimit(g.cfg.MaxMessageBytes)
	_ = ws.SetReadDeadline(time.Now().Add(g.cfg.PongWait))
	max := int64(g.cfg.Limits.MaxFrameBytes)
	for {
		_, rd, err := ws.NextReader()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				closeWS(ws, closeTooBig, "message too large")
			} else {
				_ = ws.Close()
			}
			return storage.Device{}, nil, false
		}
		data, err := io.ReadAll(io.LimitReader(rd, max+1))
		if err == nil && int64(len(data)) > max {
			_, err = io.Copy(io.Discard, rd)
			data = nil
			framesRefused.WithLabelValues(protocol.CodeTooLarge).Inc()
		}
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				closeWS(ws, closeTooBig, "message too large")
			} else {
				_ = ws.Close()
			}
			return storage.Device{}, nil, false
		}
		if data == nil {
			continue
		}
		f, fe := l.codec.translate(data)
		if f.device == "" {
			framesRefused.WithLabelValues(fe.Code).Inc()
			l.note("legacy frame refused before the connection named its device", zap.String("remote", remote),
				zap.String("code", fe.Code), zap.String("reason", fe.Message))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		dev, err := g.store.Device(ctx, f.device)
		cancel()
		switch {
		case err == nil && dev.RevokedAt == 0:
			return dev, data, true
		case err == nil, errors.Is(err, storage.ErrNotFound):
			authFailures.Inc()
			l.note("legacy connection refused: its deviceId is no registered, active device",
				zap.String("remote", remote), zap.String("device", f.device))
			closeWS(ws, closePolicy, "unknown or revoked device")
		default:
			g.log.Error("legacy fleet device lookup", zap.String("device", f.device), zap.Error(err))
			closeWS(ws, closeTryAgain, "cannot check the device now; try again later")
		}
		return storage.Device{}, nil, false
	}
}

// closeWS sends a close frame and closes a socket that has no deviceConn.
func closeWS(ws *websocket.Conn, code int, reason string) {
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	_ = ws.Close()
}

// legacyConn is the framing of one legacy connection: frames are translated
// before the native handling, accepted ones answered with the reply text,
// refused ones only counted and logged (the firmware knows no error frame).
type legacyConn struct {
	l *legacyListener
	// keyAt is when the connection's key was issued (0: fleet mode, no
	// key); a newer key of the device closes the connection.
	keyAt int64
	// told is set once a refusal of this connection was logged at info
	// level; later ones go to debug.
	told atomic.Bool
}

var _ framing = (*legacyConn)(nil)

func (lc *legacyConn) receive(c *deviceConn, data []byte) {
	f, fe := lc.l.codec.translate(data)
	if fe != nil {
		framesRefused.WithLabelValues(fe.Code).Inc()
		lc.refuse(c, *fe)
		return
	}
	if f.device != c.device.ID {
		framesRefused.WithLabelValues(protocol.CodeForbidden).Inc()
		lc.tell(c, zap.WarnLevel, "legacy frame refused: its deviceId is not the device of the connection's key",
			zap.String("frame_device", f.device))
		return
	}
	c.handle(f.native)
}

func (lc *legacyConn) ack(c *deviceConn, ids []string) {
	for range ids {
		c.write(websocket.TextMessage, lc.l.reply)
	}
}

func (lc *legacyConn) refuse(c *deviceConn, fe protocol.FrameError) {
	lc.tell(c, zap.InfoLevel, "legacy frame refused", zap.String("code", fe.Code), zap.String("reason", fe.Message))
}

// command sends a downlink command as a JSON text message, the device
// protocol's command with the deviceId beside it, as legacy frames carry it:
// {"type":"command","deviceId":"D123","id":"c-3","name":"...","args":{...}}.
func (lc *legacyConn) command(c *deviceConn, cmd *protocol.Command) {
	c.send(struct {
		Type     string          `json:"type"`
		DeviceID string          `json:"deviceId"`
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		Args     json.RawMessage `json:"args,omitempty"`
	}{protocol.TypeCommand, c.device.ID, cmd.ID, cmd.Name, cmd.Args})
}

// tell logs a refusal: the connection's first at level (within the
// listener's budget), the others at debug.
func (lc *legacyConn) tell(c *deviceConn, level zapcore.Level, msg string, fields ...zap.Field) {
	if !lc.told.Swap(true) && lc.l.logs.Allow() {
		if ce := c.log.Check(level, msg); ce != nil {
			ce.Write(fields...)
		}
		return
	}
	if ce := c.log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(fields...)
	}
}
