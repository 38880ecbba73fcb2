package wsgateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

// countingStore counts the device token lookups that reach the store, and
// makes each cost delay (a round trip to a store on another host).
type countingStore struct {
	wsgateway.Store
	delay   time.Duration
	lookups atomic.Int64
}

func (s *countingStore) DeviceByTokenHash(ctx context.Context, tokenHash []byte) (storage.Device, error) {
	s.lookups.Add(1)
	if s.delay > 0 {
		t := time.NewTimer(s.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return storage.Device{}, ctx.Err()
		}
	}
	return s.Store.DeviceByTokenHash(ctx, tokenHash)
}

// cluster is gateways sharing one Redis and one SQLite store, each seeing
// the store through its own countingStore.
type cluster struct {
	*env // the first gateway
	gws  []*env
}

// cacheConfig is a gateway config for storms: no cap on connections that
// have not authenticated yet (the storm comes from one address).
func cacheConfig(cfg wsgateway.Config) wsgateway.Config {
	cfg.MaxUnauthConns, cfg.MaxUnauthConnsPerAddr = -1, -1
	return cfg
}

func newCluster(t testing.TB, n int, cfg wsgateway.Config, delay time.Duration) (*cluster, []*countingStore) {
	t.Helper()
	return newClusterOn(t, n, cfg, delay, nil)
}

// newClusterOn is newCluster with the store the gateways see built by base
// from the SQLite store (nil: that store itself).
func newClusterOn(t testing.TB, n int, cfg wsgateway.Config, delay time.Duration,
	base func(*sqlite.Store) wsgateway.Store) (*cluster, []*countingStore) {
	t.Helper()
	ctx := context.Background()
	srv := redistest.Start(t)
	st, err := sqlite.Open(ctx, t.TempDir()+"/test.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rdb, err := redisq.Open(ctx, srv.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	var seen wsgateway.Store = st
	if base != nil {
		seen = base(st)
	}
	c := &cluster{}
	var stores []*countingStore
	for i := range n {
		cs := &countingStore{Store: seen, delay: delay}
		stores = append(stores, cs)
		e := &env{t: t, redis: srv, rdb: rdb, store: st}
		cfg := cfg
		cfg.ID = "gw" + strconv.Itoa(i+1)
		startGatewayOn(e, cfg, cs)
		c.gws = append(c.gws, e)
	}
	c.env = c.gws[0]
	return c, stores
}

// startGatewayOn is env.startGateway with the store the gateway sees.
func startGatewayOn(e *env, cfg wsgateway.Config, s wsgateway.Store) {
	e.t.Helper()
	gw, err := wsgateway.New(cfg, e.rdb, e.rdb, s, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.gw = gw
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln, nil) }()
	e.base = "http://" + ln.Addr().String()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("gateway stopped with %v", err)
			}
		})
	}
	e.t.Cleanup(e.stop)
}

// status dials tok once and returns the HTTP status of the handshake (101
// when upgraded; the socket is closed at once).
func (e *env) status(tok string) int {
	ws, resp, err := e.dial(tok)
	if err == nil {
		ws.Close()
		return resp.StatusCode
	}
	if resp == nil {
		e.t.Errorf("dial: %v", err)
		return 0
	}
	return resp.StatusCode
}

// warm waits until the gateway serves tok from its cache: its polls have
// completed a round (they run at start), and a second handshake costs the
// store nothing.
func warm(t testing.TB, e *env, s *countingStore, tok string) {
	t.Helper()
	checkFor(t, 5*time.Second, "the token cache to serve", func() bool {
		if st := e.status(tok); st != http.StatusSwitchingProtocols {
			t.Fatalf("warm-up handshake: %d", st)
		}
		n := s.lookups.Load()
		e.status(tok)
		return s.lookups.Load() == n
	})
}

// storm dials every token in toks concurrently, conc at a time, and fails
// the test unless each handshake is upgraded.
func storm(t testing.TB, e *env, toks []string, conc int) {
	t.Helper()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, tok := range toks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ws, resp, err := e.dial(tok)
			if err != nil {
				if failed.Add(1) == 1 {
					st, body := 0, []byte(nil)
					if resp != nil {
						st = resp.StatusCode
						body, _ = io.ReadAll(resp.Body)
					}
					t.Errorf("storm handshake: %v (status %d %s)", err, st, body)
				}
				return
			}
			ws.Close()
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d storm handshakes failed", n, len(toks))
	}
}

// stormSize is the distinct devices of the reconnect storm test: 1,000 by
// default, DEVTRACK_STORM_DEVICES for the full 10,000 of the issue.
func stormSize(t *testing.T) int {
	if v := os.Getenv("DEVTRACK_STORM_DEVICES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("DEVTRACK_STORM_DEVICES=%q: want a positive count", v)
		}
		return n
	}
	return 1000
}

// A reconnect storm costs the store one lookup per distinct token: every
// device reconnecting three times, and a crowd of handshakes of one device
// at once (collapsed into one query while it is in flight).
func TestTokenCacheReconnectStormQueriesEachTokenOnce(t *testing.T) {
	n := stormSize(t)
	c, stores := newCluster(t, 1, cacheConfig(wsgateway.Config{}), 5*time.Millisecond)
	s := stores[0]
	warm(t, c.env, s, c.addDevice("warm", "g"))

	toks := make([]string, n)
	for i := range toks {
		toks[i] = c.addDevice("d"+strconv.Itoa(i), "g")
	}
	before := s.lookups.Load()
	start := time.Now()
	for round := range 3 {
		storm(t, c.env, toks, 64)
		t.Logf("round %d: %d store lookups so far for %d devices", round+1, s.lookups.Load()-before, n)
	}
	if got := s.lookups.Load() - before; got > int64(n) {
		t.Fatalf("%d devices reconnecting 3 times: %d store lookups, want at most %d", n, got, n)
	}
	t.Logf("%d handshakes in %s", 3*n, time.Since(start).Round(time.Millisecond))

	one := c.addDevice("crowd", "g")
	same := make([]string, 100)
	for i := range same {
		same[i] = one
	}
	before = s.lookups.Load()
	storm(t, c.env, same, 100)
	if got := s.lookups.Load() - before; got != 1 {
		t.Fatalf("100 concurrent handshakes of one new device: %d store lookups, want 1", got)
	}
}

// The same storm without the cache reaches the store at every handshake:
// the baseline the test above improves on, and proof that 0 turns it off.
func TestTokenCacheOffLooksUpEveryHandshake(t *testing.T) {
	c, stores := newCluster(t, 1, cacheConfig(wsgateway.Config{TokenCacheSize: -1}), 0)
	toks := make([]string, 50)
	for i := range toks {
		toks[i] = c.addDevice("d"+strconv.Itoa(i), "g")
	}
	storm(t, c.env, toks, 50)
	storm(t, c.env, toks, 50)
	if got := stores[0].lookups.Load(); got != 100 {
		t.Fatalf("100 handshakes without a cache: %d store lookups, want 100", got)
	}
}

// revokeBound is the contract's: a revoked device's sockets close, and new
// handshakes are refused, on every gateway within 5 s.
const revokeBound = 5 * time.Second

// openOn dials tok on e, which must upgrade.
func openOn(t *testing.T, e *env, tok string) *websocket.Conn {
	t.Helper()
	ws, _, err := e.dial(tok)
	if err != nil {
		t.Fatalf("dial %s: %v", e.base, err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// refusedWithin waits until a handshake with tok is refused with 401 on e
// and returns how long after since that was.
func refusedWithin(t *testing.T, e *env, tok string, since time.Time) time.Duration {
	t.Helper()
	checkFor(t, revokeBound, "handshake refused on "+e.base, func() bool {
		return e.status(tok) == http.StatusUnauthorized
	})
	return time.Since(since)
}

// closedWithin waits for ws to be closed with 4001 and returns how long
// after since that was.
func closedWithin(t *testing.T, ws *websocket.Conn, since time.Time) time.Duration {
	t.Helper()
	if code := waitClosed(t, ws, revokeBound-time.Since(since)); code != 4001 {
		t.Fatalf("closed with %d, want 4001", code)
	}
	return time.Since(since)
}

// Revoking a device whose token both gateways hold in their cache (TTL far
// longer than the test) closes its socket and refuses it on both within
// 5 s, with the default poll interval.
func TestTokenCacheRevokeClosesAndRefusesOnEveryGateway(t *testing.T) {
	c, stores := newCluster(t, 2, cacheConfig(wsgateway.Config{TokenCacheTTL: time.Hour}), 0)
	gw1, gw2 := c.gws[0], c.gws[1]
	t1, t2 := c.addDevice("d1", "g"), c.addDevice("d2", "g")
	warm(t, gw1, stores[0], t1)
	warm(t, gw2, stores[1], t1)
	warm(t, gw1, stores[0], t2)
	warm(t, gw2, stores[1], t2)
	ws1 := openOn(t, gw1, t1) // d1 on gw1
	ws2 := openOn(t, gw2, t2) // d2 on gw2

	start := time.Now()
	for _, id := range []string{"d1", "d2"} {
		if err := c.store.RevokeDevice(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("d1's socket on gw1 closed after %s", closedWithin(t, ws1, start).Round(time.Millisecond))
	t.Logf("d2's socket on gw2 closed after %s", closedWithin(t, ws2, start).Round(time.Millisecond))
	for _, e := range []*env{gw1, gw2} {
		for _, tok := range []string{t1, t2} {
			t.Logf("refused on %s after %s", e.base, refusedWithin(t, e, tok, start).Round(time.Millisecond))
		}
	}
	// And they stay refused: nothing stale comes back.
	for range 5 {
		for _, e := range []*env{gw1, gw2} {
			if st := e.status(t1); st != http.StatusUnauthorized {
				t.Fatalf("revoked device's handshake later: %d, want 401", st)
			}
		}
	}
}

// Rotating a cached device token: the old token's socket closes and the old
// token is refused on both gateways within 5 s; the new token connects at
// once and stays connected.
func TestTokenCacheRotationRefusesTheOldTokenOnEveryGateway(t *testing.T) {
	c, stores := newCluster(t, 2, cacheConfig(wsgateway.Config{TokenCacheTTL: time.Hour}), 0)
	gw1, gw2 := c.gws[0], c.gws[1]
	old := c.addDevice("d1", "g")
	warm(t, gw2, stores[1], old)
	warm(t, gw1, stores[0], old)
	ws := openOn(t, gw1, old)

	start := time.Now()
	newTok := token.New(token.DevicePrefix)
	if _, err := c.store.RotateDeviceToken(context.Background(), "d1", token.Hash(newTok)); err != nil {
		t.Fatal(err)
	}
	// The new token works at once, before any poll (nothing negative is
	// cached); through HTTP ingest, as a second socket would replace the
	// first one before the rotation closes it.
	if st := ingestStatus(t, gw2, newTok); st != http.StatusOK {
		t.Fatalf("new token right after the rotation: HTTP ingest %d, want 200", st)
	}
	t.Logf("old token's socket closed after %s", closedWithin(t, ws, start).Round(time.Millisecond))
	for _, e := range []*env{gw1, gw2} {
		t.Logf("old token refused on %s after %s", e.base, refusedWithin(t, e, old, start).Round(time.Millisecond))
	}
	fresh := openOn(t, gw2, newTok)
	// The rotation stays in the polls' look-back window: the connection
	// with the new token and its cache entry must outlive those rounds.
	_ = fresh.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := fresh.ReadMessage(); err == nil || !isTimeout(err) {
		t.Fatalf("connection with the new token: %v, want it to stay open", err)
	}
	n := stores[0].lookups.Load()
	for range 3 {
		if st := gw1.status(newTok); st != http.StatusSwitchingProtocols {
			t.Fatalf("new token on gw1: %d", st)
		}
	}
	if got := stores[0].lookups.Load() - n; got > 1 {
		t.Fatalf("new token, 3 handshakes after the rotation: %d store lookups, want at most 1", got)
	}
}

// ingestStatus posts one location with tok to e's HTTP ingest.
func ingestStatus(t *testing.T, e *env, tok string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+"/api/v1/ingest", strings.NewReader(loc("i1", 1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A device added while the gateways are busy serving from their caches
// connects at its first handshake, even if its token was tried (and
// refused) just before it was registered: refusals are not cached.
func TestTokenCacheNewDeviceConnectsAtOnce(t *testing.T) {
	c, stores := newCluster(t, 1, cacheConfig(wsgateway.Config{}), 0)
	warm(t, c.env, stores[0], c.addDevice("warm", "g"))
	tok := token.New(token.DevicePrefix)
	if st := c.status(tok); st != http.StatusUnauthorized {
		t.Fatalf("unregistered token: %d, want 401", st)
	}
	if err := c.store.AddDevice(context.Background(), storage.Device{ID: "late", Group: "g"}, token.Hash(tok)); err != nil {
		t.Fatal(err)
	}
	if st := c.status(tok); st != http.StatusSwitchingProtocols {
		t.Fatalf("first handshake of a device just added: %d, want 101", st)
	}
}
