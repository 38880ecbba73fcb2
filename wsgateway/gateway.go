// Package wsgateway is the edge of devtrack: the device WebSocket and HTTP
// ingest, the listener for legacy firmware (legacy.go), authentication at the
// handshake, the device links in Redis, and the query API. It depends on small interfaces (Queue, Presence, Store) that
// cmd/devtrack wires to Redis and the store.
package wsgateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/web"
	"go.uber.org/zap"
)

// Queue is the ingest list and its counters.
type Queue interface {
	Push(ctx context.Context, items ...[]byte) error
	Stats(ctx context.Context) (redisq.Stats, error)
	DeadLetters(ctx context.Context, offset, limit int) ([]redisq.DeadLetter, error)
	RequeueDead(ctx context.Context, n int) (int, error)
	RequeueDeadLetter(ctx context.Context, id string) (bool, error)
	DeleteDeadLetter(ctx context.Context, id string) (bool, error)
}

// Presence is the part of Redis that says which gateway holds which device.
type Presence interface {
	SetLink(ctx context.Context, device, value string) (string, error)
	EnsureLink(ctx context.Context, device, value string) (bool, error)
	DeleteLink(ctx context.Context, device, value string) (bool, error)
	GatewayHeartbeat(ctx context.Context, gateway string, ttl time.Duration) (bool, error)
	GatewayGone(ctx context.Context, gateway string) error
	SweepLinks(ctx context.Context, gone func(instance string) bool) ([]string, error)
	DeviceStates(ctx context.Context) (map[string]redisq.DeviceState, error)
	// DeviceStatesOf is DeviceStates for the given devices only (snapshots).
	DeviceStatesOf(ctx context.Context, devices []string) (map[string]redisq.DeviceState, error)
	PublishGateway(ctx context.Context, gateway string, payload []byte) error
	ReceiveGateway(ctx context.Context, gateway string, fn func([]byte))
	// NewLiveSubscriber holds the hub's subscriptions to live channels.
	NewLiveSubscriber(message func(device string, msg []byte), renewed func(devices []string), lost func(err error)) *redisq.LiveSubscriber
	Link(ctx context.Context, device string) (string, error)
	PublishLive(ctx context.Context, msgs []redisq.LiveMessage) error
	Ping(ctx context.Context) error
	PublishPresence(ctx context.Context, device string, online bool) error
	SetSession(ctx context.Context, id, user string, ttl time.Duration) error
	Session(ctx context.Context, id string) (string, error)
	DeleteSession(ctx context.Context, id string) error
}

// Store is what the gateway reads from the archive.
type Store interface {
	DeviceByTokenHash(ctx context.Context, tokenHash []byte) (storage.Device, error)
	UserByTokenHash(ctx context.Context, tokenHash []byte) (storage.User, error)
	UserByName(ctx context.Context, name string) (storage.User, []byte, error)
	Device(ctx context.Context, id string) (storage.Device, error)
	Devices(ctx context.Context, groups []string) ([]storage.Device, error)
	RevokedSince(ctx context.Context, sinceMS int64) ([]string, error)
	DevicesRotatedSince(ctx context.Context, sinceMS int64) ([]storage.Device, error)
	DevicesChangedSince(ctx context.Context, sinceMS int64) ([]storage.Device, error)
	DeviceByLegacyKey(ctx context.Context, keyHash []byte) (storage.Device, storage.LegacyKey, error)
	CreateShare(ctx context.Context, sh storage.Share, tokenHash []byte) (storage.Share, error)
	ShareByTokenHash(ctx context.Context, tokenHash []byte) (storage.Share, error)
	Share(ctx context.Context, id string) (storage.Share, error)
	RevokeShare(ctx context.Context, id string) (storage.Share, error)
	SharesOf(ctx context.Context, device string, nowMS int64) ([]storage.Share, error)
	LegacyKeysIssuedSince(ctx context.Context, sinceMS int64) ([]storage.LegacyKey, error)
	Users(ctx context.Context) ([]storage.User, error)
	Locations(ctx context.Context, q storage.LocationQuery) ([]storage.Location, string, error)
	Logs(ctx context.Context, q storage.LogQuery) ([]storage.LogEntry, string, error)
}

var _ Queue = (*redisq.Client)(nil)
var _ Presence = (*redisq.Client)(nil)

// Config tunes a gateway. Zero values take the documented defaults.
type Config struct {
	// Listen is the address to serve on. Default ":8080".
	Listen string
	// ID names this gateway; it must be unique among running gateways and
	// may not contain '~' or '#'. Device links, the heartbeat key and the
	// control channel name the instance, ID plus a nonce drawn at each start
	// (redisq.NewInstance), so a gateway restarted with the same ID sweeps
	// the links its killed predecessor left. Default host-pid.
	ID string
	// Limits bound device frames (protocol defaults: 64 KiB frames, ...).
	Limits protocol.Limits
	// MaxMessageBytes is the hard cap of one WebSocket message: beyond it the
	// connection is closed (1009). Messages between Limits.MaxFrameBytes and
	// this cap get a too_large error and the connection stays open.
	// Default 16 x Limits.MaxFrameBytes.
	MaxMessageBytes int64
	// MaxBodyBytes caps an HTTP ingest body. Default 1 MiB.
	MaxBodyBytes int64
	// FrameRate and FrameBurst limit the frames per second of one device
	// connection, and of one device's HTTP ingest (batch items count one
	// each). FrameBurst may not be below Limits.MaxBatch: a batch the
	// gateway accepts must fit in the bucket, or it would be refused as
	// rate_limited at every retry. Defaults 200 and the larger of 2 x
	// FrameRate and Limits.MaxBatch.
	FrameRate  float64
	FrameBurst int
	// UpdateInterval is the reporting interval advised to HTTP clients. Default 10 s.
	UpdateInterval time.Duration
	// PushTimeout bounds the wait for Redis before a frame is refused as
	// unavailable, counted from the frame's arrival. Default 1.5 s (the
	// contract asks for an answer within 2 s).
	PushTimeout time.Duration
	// RedisTimeout bounds every other Redis call made without a deadline of
	// its own (API reads, links at the handshake, presence, sessions), so
	// that a stalled Redis gives a 503 or an offline view in time rather
	// than a hung request. Default 1.5 s.
	RedisTimeout time.Duration
	// PingPeriod is how often the gateway pings a device; a device silent for
	// PongWait is disconnected. Defaults 25 s and 60 s.
	PingPeriod time.Duration
	PongWait   time.Duration
	// DeviceIdleTimeout closes a device WebSocket that sent no frame (pongs
	// do not count) for this long, with 4002 (device_idle.go). 0: never.
	DeviceIdleTimeout time.Duration
	// WriteWait bounds one write to a device. Default 10 s.
	WriteWait time.Duration
	// HeartbeatTTL is the life of the gateway's heartbeat key; it beats every
	// third of it and sweeps the links of dead gateways as often. Default 15 s.
	HeartbeatTTL time.Duration
	// RevokePoll is how often revoked devices and rotated device tokens are
	// looked up and their connections closed. Default 1 s. The token cache
	// serves entries only while these polls completed a round begun within
	// the last 3 s, so a RevokePoll near or above that bypasses it.
	RevokePoll time.Duration
	// TokenCacheSize caps the device tokens whose lookup is kept in memory
	// (handshakes and HTTP ingest then need no store query), TokenCacheTTL
	// how long one is kept. A revoke or rotation evicts the device's entries
	// at the next RevokePoll, and no entry is used more than 3 s after one
	// whatever the TTL (see tokenCache). Unknown and revoked tokens are not
	// cached. Defaults 100,000 and 1 min; negative either: no cache, every
	// lookup goes to the store.
	TokenCacheSize int
	TokenCacheTTL  time.Duration
	// ShutdownTimeout bounds a graceful shutdown. Default 10 s.
	ShutdownTimeout time.Duration
	// HeaderTimeout bounds the reading of a request's head, BodyTimeout of
	// its body (set per request: a WebSocket or a streamed export is not cut
	// by it), IdleTimeout a keep-alive connection between requests.
	// Defaults 10 s, 10 s and 60 s.
	HeaderTimeout time.Duration
	BodyTimeout   time.Duration
	IdleTimeout   time.Duration
	// MaxConns caps the open connections of the listener (authenticated or
	// not). Default RLIMIT_NOFILE minus a reserve (a tenth of it, at least
	// 64) for Redis, the store and logs, so that accept never fails with
	// EMFILE; no cap when the limit is unknown. Negative: no cap.
	MaxConns int
	// MaxUnauthConns caps the connections that have not authenticated yet
	// (no device or user token resolved on them), MaxUnauthConnsPerAddr
	// those of one client address. At a cap the oldest idle, else oldest,
	// unauthenticated connection is closed to make room (see admission).
	// Defaults: the smaller of 1024 and MaxConns/2, and 64. Negative: no cap.
	MaxUnauthConns        int
	MaxUnauthConnsPerAddr int
	// StoreHealth, if not nil, reports whether the store can be written;
	// /readyz answers 503 while it returns an error (a full or read-only
	// disk, a database that refuses writes). The gateway itself only reads
	// the store, so it cannot tell; cmd/devtrack wires the store's own
	// health check here.
	StoreHealth func(ctx context.Context) error
	// Tiles is the map tile URL template of the web UI ({z}/{x}/{y}, and
	// optionally {s}); "none" shows the map without tiles. Default
	// OpenStreetMap's.
	Tiles string
	// TilesAttribution is shown in the map's corner. Default OpenStreetMap's
	// with the default tiles, none with others.
	TilesAttribution string
	// TilesCRS is the coordinate system of the tiles: "wgs84" (default),
	// "gcj02" (Amap, Tencent) or "bd09". Positions stay WGS-84 in the API;
	// the web UI converts them only to draw them on such tiles.
	TilesCRS string
	// TrustedProxies are the proxies whose X-Forwarded-Proto and
	// X-Forwarded-For are believed: the session cookie is Secure when such a
	// proxy says https, and failed logins are counted against the client's
	// address it reports. Empty (default): no header is believed.
	TrustedProxies []netip.Prefix
	// CORSOrigins are the exact origins (scheme://host[:port], as
	// ParseCORSOrigins reads them) whose pages may embed devtrack: call the
	// query API with a bearer token (CORS, never with credentials: the
	// session cookie stays same-origin) and frame the web UI (CSP
	// frame-ancestors). Empty (default): no CORS headers and no framing.
	// /ws/live takes a token from any origin either way (cors.go).
	CORSOrigins []string

	// Viewer (/ws/live) bounds, so that what a viewer makes the gateway do
	// and hold stays in proportion to what it is allowed to watch.
	//
	// ViewerMaxDevices caps the distinct devices one socket watches; a
	// subscribe that would pass it is refused whole (too_many_devices).
	// Default 10,000.
	ViewerMaxDevices int
	// ViewerMaxSockets caps the /ws/live sockets one user holds open on this
	// gateway; one more is refused with HTTP 429 too_many_connections.
	// Default 20.
	ViewerMaxSockets int
	// ViewerSubscribeRate and ViewerSubscribeBurst are the token bucket of
	// one socket's subscribe and unsubscribe requests; one over it gets a
	// rate_limited error and does nothing. Defaults 2/s and 20.
	ViewerSubscribeRate  float64
	ViewerSubscribeBurst int
	// ViewerMaxPendingBytes caps the bytes queued for one viewer and not yet
	// written to its socket; a viewer past it is a slow consumer and is
	// closed (4008). It must exceed the largest snapshot, about 200 bytes
	// per device of ViewerMaxDevices. Default 8 MiB.
	ViewerMaxPendingBytes int

	// Legacy is the listener for legacy firmware (legacy.go); none when
	// Legacy.Listen is empty. Its connections share the device settings
	// above (limits, rate, timeouts, connection caps: its listener has caps
	// of its own, of the same sizes).
	Legacy LegacyConfig
}

// DefaultTiles is the web UI's default tile server.
const (
	DefaultTiles            = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
	DefaultTilesAttribution = "&copy; OpenStreetMap contributors"
)

// setDefaults fills the zero fields and returns an error for a setting that
// cannot work.
func (c *Config) setDefaults() error {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = host + "-" + strconv.Itoa(os.Getpid())
	}
	if strings.ContainsAny(c.ID, "~#") || strings.TrimSpace(c.ID) != c.ID {
		return fmt.Errorf("gateway id %q: may not contain '~', '#' or surrounding spaces", c.ID)
	}
	c.Limits = c.Limits.WithDefaults()
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 16 * int64(c.Limits.MaxFrameBytes)
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.FrameRate <= 0 {
		c.FrameRate = 200
	}
	if c.FrameBurst <= 0 {
		c.FrameBurst = max(2*int(c.FrameRate), c.Limits.MaxBatch)
	}
	if c.FrameBurst < c.Limits.MaxBatch {
		return fmt.Errorf("device burst %d is below the largest batch the gateway accepts (%d frames): "+
			"every full batch would be refused as rate_limited; raise the burst to at least %d",
			c.FrameBurst, c.Limits.MaxBatch, c.Limits.MaxBatch)
	}
	if c.UpdateInterval <= 0 {
		c.UpdateInterval = 10 * time.Second
	}
	if c.PushTimeout <= 0 {
		c.PushTimeout = 1500 * time.Millisecond
	}
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = 1500 * time.Millisecond
	}
	if c.PingPeriod <= 0 {
		c.PingPeriod = 25 * time.Second
	}
	if c.PongWait <= 0 {
		c.PongWait = 60 * time.Second
	}
	if c.WriteWait <= 0 {
		c.WriteWait = 10 * time.Second
	}
	if c.HeartbeatTTL <= 0 {
		c.HeartbeatTTL = 15 * time.Second
	}
	if c.RevokePoll <= 0 {
		c.RevokePoll = time.Second
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = 100_000
	}
	if c.TokenCacheTTL == 0 {
		c.TokenCacheTTL = time.Minute
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = 10 * time.Second
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxConns == 0 {
		if lim := fdLimit(); lim > 0 {
			c.MaxConns = max(lim-max(64, lim/10), 1)
		}
	}
	if c.MaxUnauthConns == 0 {
		c.MaxUnauthConns = 1024
		if c.MaxConns > 0 {
			c.MaxUnauthConns = max(min(1024, c.MaxConns/2), 1)
		}
	}
	if c.MaxUnauthConnsPerAddr == 0 {
		c.MaxUnauthConnsPerAddr = 64
	}
	if c.Tiles == "" {
		c.Tiles = DefaultTiles
	}
	// By the URL, not by an empty Tiles: the --tiles flag's default already
	// carries DefaultTiles.
	if c.Tiles == DefaultTiles && c.TilesAttribution == "" {
		c.TilesAttribution = DefaultTilesAttribution
	}
	switch c.TilesCRS {
	case "":
		c.TilesCRS = protocol.CRSWGS84
	case protocol.CRSWGS84, protocol.CRSGCJ02, protocol.CRSBD09:
	default:
		return fmt.Errorf("tiles crs %q: want %s, %s or %s", c.TilesCRS, protocol.CRSWGS84, protocol.CRSGCJ02, protocol.CRSBD09)
	}
	if c.ViewerMaxDevices <= 0 {
		c.ViewerMaxDevices = 10_000
	}
	if c.ViewerMaxSockets <= 0 {
		c.ViewerMaxSockets = 20
	}
	if c.ViewerSubscribeRate <= 0 {
		c.ViewerSubscribeRate = 2
	}
	if c.ViewerSubscribeBurst <= 0 {
		c.ViewerSubscribeBurst = 20
	}
	if c.ViewerMaxPendingBytes <= 0 {
		c.ViewerMaxPendingBytes = 8 << 20
	}
	if c.Tiles == "none" {
		c.Tiles = ""
	}
	if len(c.CORSOrigins) > 0 {
		origins, err := ParseCORSOrigins(strings.Join(c.CORSOrigins, ","))
		if err != nil {
			return err
		}
		c.CORSOrigins = origins
	}
	if c.Legacy.Listen != "" {
		if err := c.Legacy.setDefaults(); err != nil {
			return err
		}
	}
	return nil
}

// Gateway serves devices and API clients.
type Gateway struct {
	cfg      Config
	instance string // this run: cfg.ID plus a nonce (redisq.NewInstance)
	queue    Queue
	presence Presence
	store    Store
	log      *zap.Logger
	mux      *http.ServeMux

	conns   *registry
	orphans orphanLinks // links left behind by a failed removal
	hub     *hub
	viewers *viewerSet     // open viewers by user (socket cap, credentials)
	shares  *shareSockets  // open share sockets by share (share.go)
	ingest  *keyedLimiters // per-device rate limits of HTTP ingest
	pushes  pushGroup      // group commit of ingest list pushes (pushgroup.go)
	tokens  *tokenCache    // device token lookups; nil: no cache
	logins  *keyedLimiters // failed logins per user name
	addrs   *keyedLimiters // failed logins per client address

	legacy     *legacyListener          // nil: no legacy listener
	legacyAddr atomic.Pointer[net.Addr] // where it listens, once Serve opened it

	// bg is the context of every goroutine the gateway starts besides the
	// request handlers (hub subscriptions, background loops); Serve cancels
	// it at shutdown and waits for them on bgWG before it returns, so that
	// the caller may close Redis then.
	bg     context.Context
	stopBG context.CancelFunc
	bgMu   sync.Mutex // orders goBG's Add before shutdown's Wait
	bgWG   sync.WaitGroup
}

// New returns a gateway; call Run to serve, or mount Handler yourself.
func New(cfg Config, q Queue, p Presence, s Store, log *zap.Logger) (*Gateway, error) {
	if q == nil || p == nil || s == nil {
		return nil, errors.New("gateway: queue, presence and store are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	instance := redisq.NewInstance(cfg.ID)
	g := &Gateway{cfg: cfg, instance: instance, store: s,
		queue:    boundedQueue{q, cfg.RedisTimeout},
		presence: boundedPresence{p, cfg.RedisTimeout},
		log:      log.With(zap.String("gateway", cfg.ID), zap.String("instance", instance)), conns: newRegistry(),
		ingest: newKeyedLimiters(cfg.FrameRate, cfg.FrameBurst),
		logins: newKeyedLimiters(1.0/6, 10), // 10 wrong passwords, then one try per 6 s
		addrs:  newKeyedLimiters(1, 50)}     // a password sprayer from one address
	if cfg.TokenCacheSize > 0 && cfg.TokenCacheTTL > 0 {
		var err error
		if g.tokens, err = newTokenCache(cfg.TokenCacheSize, cfg.TokenCacheTTL, s.DeviceByTokenHash); err != nil {
			return nil, err
		}
	}
	g.bg, g.stopBG = context.WithCancel(context.Background())
	g.hub = newHub(g)
	g.viewers = newViewerSet()
	if cfg.Legacy.Listen != "" {
		g.legacy = newLegacyListener(g, cfg.Legacy)
	}
	g.routes()
	return g, nil
}

// ID is the gateway's configured id.
func (g *Gateway) ID() string { return g.cfg.ID }

// LegacyAddr is the address the legacy listener listens on: nil when there
// is none or before Serve opened it (it is open when Serve calls ready).
func (g *Gateway) LegacyAddr() net.Addr {
	if a := g.legacyAddr.Load(); a != nil {
		return *a
	}
	return nil
}

// Instance names this run of the gateway in device links, its heartbeat key
// and its control channel: ID plus a nonce.
func (g *Gateway) Instance() string { return g.instance }

// goBG runs fn on a goroutine that Serve waits for at shutdown; fn must
// return once g.bg (or a context derived from it) ends. After shutdown
// began, fn is not started and goBG reports false.
func (g *Gateway) goBG(fn func()) bool {
	g.bgMu.Lock()
	defer g.bgMu.Unlock()
	if g.bg.Err() != nil {
		return false
	}
	g.bgWG.Add(1)
	go func() {
		defer g.bgWG.Done()
		fn()
	}()
	return true
}

// stopBackground cancels the background context and waits for every
// goroutine started by goBG.
func (g *Gateway) stopBackground() {
	g.bgMu.Lock()
	g.stopBG()
	g.bgMu.Unlock()
	g.bgWG.Wait()
}

// Handler serves every endpoint of the gateway.
func (g *Gateway) Handler() http.Handler { return g.accessLog(g.bodyDeadline(g.cors(g.mux))) }

// Run listens on cfg.Listen and serves until ctx ends, then shuts down.
// ready, if not nil, is called with the bound address once it accepts.
func (g *Gateway) Run(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway listen %s: %w", g.cfg.Listen, err)
	}
	return g.Serve(ctx, ln, ready)
}

// Serve serves on ln (and on Config.Legacy.Listen, if set) until ctx
// ends, then shuts down in this order: stop accepting, close device and
// viewer connections (1001, going away) and the devices' links, wait for
// handlers, stop the background goroutines (loops, hub subscriptions) and
// wait for them, drop the instance's heartbeat. When Serve returns, no
// goroutine of the gateway uses Redis or the store.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener, ready func(addr net.Addr)) error {
	// Requests run on reqCtx, which shutdown cancels once ShutdownTimeout
	// has passed, so that a long export cannot hold the gateway.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	servers := []server{g.newServer(ln, g.Handler(), reqCtx)}
	if g.legacy != nil {
		lln, err := net.Listen("tcp", g.cfg.Legacy.Listen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("gateway legacy listen %s: %w", g.cfg.Legacy.Listen, err)
		}
		servers = append(servers, g.newServer(lln, g.accessLog(g.legacy), reqCtx))
		addr := lln.Addr()
		g.legacyAddr.Store(&addr)
	}
	for _, loop := range []func(context.Context){g.heartbeatLoop, g.revokeLoop, g.controlLoop, g.pingLoop, g.credentialsLoop, g.hub.live.Run} {
		g.goBG(func() { loop(g.bg) })
	}

	// Every server reports on errc; the first to end (or ctx) shuts all down.
	errc := make(chan error, len(servers))
	running := len(servers)
	for _, s := range servers {
		go func() { errc <- s.srv.Serve(s.ln) }()
	}
	g.log.Info("gateway listening", zap.String("addr", ln.Addr().String()),
		zap.Int("max_conns", g.cfg.MaxConns), zap.Int("max_unauthenticated", g.cfg.MaxUnauthConns),
		zap.Int("max_unauthenticated_per_address", g.cfg.MaxUnauthConnsPerAddr))
	if g.legacy != nil {
		g.log.Info("legacy listener listening", zap.String("addr", g.LegacyAddr().String()),
			zap.Bool("fleet_mode", len(g.cfg.Legacy.Allow) > 0))
	}
	if ready != nil {
		ready(ln.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		running--
	}

	// Shutdown order: stop accepting and let plain requests finish
	// (Shutdown, meanwhile), close the WebSockets at once (hijacked, so
	// Shutdown does not see them) and wait for their handlers; past the
	// timeout end what is left; then the background loops; then the
	// heartbeat, with a budget of its own. Legacy sockets that have not
	// named their device yet are not in the registry: closed and waited
	// for on their own, before the registry (they join it, then leave
	// unbound).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
	defer cancel()
	var shut sync.WaitGroup
	for _, s := range servers {
		shut.Go(func() { _ = s.srv.Shutdown(sctx) })
	}
	g.conns.closeAll(closeGoingAway, "gateway shutting down")
	if g.legacy != nil {
		g.legacy.closeUnbound()
	}
	g.hub.closeAll(closeGoingAway, "gateway shutting down")
	if g.legacy != nil {
		g.legacy.wait(sctx)
	}
	g.conns.wait(sctx)
	shut.Wait() // returns by sctx at the latest
	cancelReqs()
	for _, s := range servers {
		_ = s.srv.Close()
	}
	for ; running > 0; running-- {
		<-errc // Serve returns at once after Shutdown
	}
	g.stopBackground()
	gctx, gcancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.RedisTimeout)
	defer gcancel()
	if err := g.presence.GatewayGone(gctx, g.instance); err != nil {
		g.log.Warn("drop heartbeat", zap.Error(err))
	}
	g.log.Info("gateway stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("gateway serve: %w", serveErr)
	}
	return nil
}

// server is one listener of the gateway and its HTTP server.
type server struct {
	srv *http.Server
	ln  net.Listener // under admission control
}

// newServer serves h on ln under admission control; requests run on reqCtx.
func (g *Gateway) newServer(ln net.Listener, h http.Handler, reqCtx context.Context) server {
	adm := newAdmission(ln, g.cfg, g.log)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: g.cfg.HeaderTimeout, IdleTimeout: g.cfg.IdleTimeout,
		ConnState: adm.connState, ConnContext: connContext,
		ErrorLog:    zap.NewStdLog(g.log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		BaseContext: func(net.Listener) context.Context { return reqCtx }}
	return server{srv, adm}
}

func (g *Gateway) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /ws/device", g.serveDevice)
	m.HandleFunc("POST /api/v1/ingest", g.serveIngest)
	m.HandleFunc("GET /ws/live", g.serveLive)
	m.HandleFunc("POST /api/v1/login", g.login)
	m.HandleFunc("POST /api/v1/logout", g.logout)
	m.HandleFunc("GET /api/v1/me", g.api(g.me))
	m.HandleFunc("GET /api/v1/devices", g.api(g.listDevices))
	m.HandleFunc("GET /api/v1/devices/{id}", g.api(g.getDevice))
	m.HandleFunc("GET /api/v1/devices/{id}/locations", g.api(g.listLocations))
	m.HandleFunc("GET /api/v1/devices/{id}/locations/export", g.api(g.exportLocations))
	m.HandleFunc("GET /api/v1/devices/{id}/trips", g.api(g.listTrips))
	m.HandleFunc("GET /api/v1/devices/{id}/report", g.api(g.report))
	m.HandleFunc("POST /api/v1/devices/{id}/commands", g.api(g.sendCommand))
	m.HandleFunc("POST /api/v1/devices", g.api(adminOnly(g.createDevice)))
	m.HandleFunc("POST /api/v1/devices/{id}/token", g.api(adminOnly(g.rotateDevice)))
	m.HandleFunc("PATCH /api/v1/devices/{id}", g.api(adminOnly(g.updateDevice)))
	m.HandleFunc("GET /api/v1/logs", g.api(g.listLogs))
	m.HandleFunc("GET /api/v1/logs/export", g.api(g.exportLogs))
	m.HandleFunc("GET /api/v1/queue", g.api(g.queueStats))
	g.shareRoutes(m) // share links: their API, /s/{secret} and /ws/share
	g.userRoutes(m)  // the admin API of users, and revoke and delete of devices
	g.alertRoutes(m) // geofences, alert rules, webhooks, alerts and geofence events
	m.HandleFunc("GET /api/v1/queue/dead", g.api(adminOnly(g.listDead)))
	m.HandleFunc("POST /api/v1/queue/dead/requeue", g.api(adminOnly(g.requeueDead)))
	m.HandleFunc("POST /api/v1/queue/dead/{id}/requeue", g.api(adminOnly(g.requeueDeadLetter)))
	m.HandleFunc("DELETE /api/v1/queue/dead/{id}", g.api(adminOnly(g.deleteDeadLetter)))
	m.Handle("GET /", web.NewHandler(web.Options{FrameAncestors: g.cfg.CORSOrigins}))
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /readyz", g.readyz)
	m.Handle("GET /metrics", metricsHandler())
	g.mux = m
}

func (g *Gateway) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RedisTimeout)
	defer cancel()
	if err := g.presence.Ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "redis: "+err.Error())
		return
	}
	if _, err := g.store.Device(ctx, "\x00readyz"); err != nil && !errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "store: "+err.Error())
		return
	}
	if g.cfg.StoreHealth != nil {
		if err := g.cfg.StoreHealth(ctx); err != nil {
			writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "store cannot be written: "+err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
