package wsgateway

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeTokens is a store of device tokens that counts its lookups; gate, if
// set, holds every lookup until it is closed.
type fakeTokens struct {
	mu      sync.Mutex
	devs    map[string]storage.Device // by token hash
	calls   atomic.Int64
	gate    chan struct{}
	entered chan struct{}
}

func (f *fakeTokens) lookup(ctx context.Context, hash []byte) (storage.Device, error) {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devs[string(hash)]
	if !ok {
		return storage.Device{}, storage.ErrNotFound
	}
	return d, nil
}

// cacheClock is a settable clock.
type cacheClock struct{ t atomic.Int64 }

func (c *cacheClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *cacheClock) advance(d time.Duration) { c.t.Add(int64(d)) }

func newTestCache(t *testing.T, size int, ttl time.Duration, f *fakeTokens) (*tokenCache, *cacheClock) {
	t.Helper()
	c, err := newTokenCache(size, ttl, f.lookup)
	if err != nil {
		t.Fatal(err)
	}
	clk := &cacheClock{}
	clk.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c.now = clk.now
	return c, clk
}

// polled reports a complete round of both polls beginning now, with nothing found.
func polled(c *tokenCache, clk *cacheClock) {
	c.revocationsChecked(clk.now(), nil)
	c.rotationsChecked(clk.now(), nil)
}

func mustLookup(t *testing.T, c *tokenCache, hash string) storage.Device {
	t.Helper()
	d, err := c.lookup(context.Background(), []byte(hash))
	if err != nil {
		t.Fatalf("lookup %q: %v", hash, err)
	}
	return d
}

func TestTokenCacheServesOnlyWhileThePollsAreCurrent(t *testing.T) {
	f := &fakeTokens{devs: map[string]storage.Device{"h1": {ID: "d1"}}}
	c, clk := newTestCache(t, 10, time.Minute, f)

	mustLookup(t, c, "h1")
	mustLookup(t, c, "h1")
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("before any poll round: %d store lookups, want 2 (nothing served)", n)
	}
	polled(c, clk)
	mustLookup(t, c, "h1")
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("after a poll round: %d store lookups, want 2 (served from memory)", n)
	}
	clk.advance(tokenCacheMaxLag + time.Millisecond)
	mustLookup(t, c, "h1")
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("polls %s behind: %d store lookups, want 3 (cache bypassed)", tokenCacheMaxLag, n)
	}
	// Only the rotation poll caught up: still behind.
	c.rotationsChecked(clk.now(), nil)
	mustLookup(t, c, "h1")
	if n := f.calls.Load(); n != 4 {
		t.Fatalf("revoke poll behind: %d store lookups, want 4", n)
	}
	c.revocationsChecked(clk.now(), nil)
	mustLookup(t, c, "h1")
	if n := f.calls.Load(); n != 4 {
		t.Fatalf("both polls current again: %d store lookups, want 4", n)
	}
}

func TestTokenCacheExpiresAfterTTL(t *testing.T) {
	f := &fakeTokens{devs: map[string]storage.Device{"h1": {ID: "d1"}}}
	c, clk := newTestCache(t, 10, 30*time.Second, f)
	polled(c, clk)
	mustLookup(t, c, "h1")
	clk.advance(29 * time.Second)
	polled(c, clk)
	mustLookup(t, c, "h1")
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("within the TTL: %d store lookups, want 1", n)
	}
	clk.advance(time.Second)
	polled(c, clk)
	mustLookup(t, c, "h1")
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("at the TTL: %d store lookups, want 2", n)
	}
}

func TestTokenCacheDoesNotCacheRefusals(t *testing.T) {
	f := &fakeTokens{devs: map[string]storage.Device{}}
	c, clk := newTestCache(t, 10, time.Minute, f)
	polled(c, clk)
	if _, err := c.lookup(context.Background(), []byte("h1")); err != storage.ErrNotFound {
		t.Fatalf("unknown token: %v, want ErrNotFound", err)
	}
	f.mu.Lock()
	f.devs["h1"] = storage.Device{ID: "new"}
	f.mu.Unlock()
	if d := mustLookup(t, c, "h1"); d.ID != "new" {
		t.Fatalf("device added after a refused lookup: got %+v", d)
	}
}

func TestTokenCacheEvictsRevokedAndRotatedDevices(t *testing.T) {
	f := &fakeTokens{devs: map[string]storage.Device{
		"old": {ID: "d1", TokenRotatedAt: 100}, "other": {ID: "d2"}, "gone": {ID: "d3"},
	}}
	c, clk := newTestCache(t, 10, time.Minute, f)
	polled(c, clk)
	for _, h := range []string{"old", "other", "gone"} {
		mustLookup(t, c, h)
	}
	// d1's token is replaced: the store answers the new one with the new
	// stamp, and no longer knows the old one.
	f.mu.Lock()
	delete(f.devs, "old")
	f.devs["new"] = storage.Device{ID: "d1", TokenRotatedAt: 200}
	f.mu.Unlock()
	mustLookup(t, c, "new") // cached before the poll sees the rotation
	c.rotationsChecked(clk.now(), []storage.Device{{ID: "d1", TokenRotatedAt: 200}})
	if _, err := c.lookup(context.Background(), []byte("old")); err != storage.ErrNotFound {
		t.Fatalf("rotated-out token after the rotation poll: %v, want ErrNotFound from the store", err)
	}
	calls := f.calls.Load()
	mustLookup(t, c, "new")
	if f.calls.Load() != calls {
		t.Fatal("the token read after the rotation was evicted with the old one")
	}

	f.mu.Lock()
	f.devs["gone"] = storage.Device{}
	delete(f.devs, "gone")
	f.mu.Unlock()
	c.revocationsChecked(clk.now(), []string{"d3"})
	if _, err := c.lookup(context.Background(), []byte("gone")); err != storage.ErrNotFound {
		t.Fatalf("revoked device after the revoke poll: %v, want the store's answer", err)
	}
	calls = f.calls.Load()
	mustLookup(t, c, "other")
	if f.calls.Load() != calls {
		t.Fatal("an unrelated device was evicted")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byDevice["d3"]; ok || c.lru.Len() != 2 || len(c.byDevice) != 2 {
		t.Fatalf("index out of step: %d entries, by device %v", c.lru.Len(), c.byDevice)
	}
}

// A lookup whose query began before a revoke and ends after the poll that
// evicted the device must not put the device back.
func TestTokenCacheDropsAnswersOlderThanARevoke(t *testing.T) {
	f := &fakeTokens{devs: map[string]storage.Device{"h1": {ID: "d1"}},
		gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	c, clk := newTestCache(t, 10, time.Minute, f)
	polled(c, clk)
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustLookup(t, c, "h1") // reads "active" ...
	}()
	<-f.entered
	c.revocationsChecked(clk.now(), []string{"d1"}) // ... the revoke poll sees it revoked meanwhile
	close(f.gate)
	<-done
	f.gate, f.entered = nil, nil
	f.mu.Lock()
	delete(f.devs, "h1")
	f.mu.Unlock()
	if _, err := c.lookup(context.Background(), []byte("h1")); err != storage.ErrNotFound {
		t.Fatalf("after the revoke: %v, want the store's ErrNotFound (stale answer not cached)", err)
	}
}

// Concurrent lookups of one token share one query.
func TestTokenCacheCollapsesConcurrentLookups(t *testing.T) {
	f := &fakeTokens{devs: map[string]storage.Device{"h1": {ID: "d1"}},
		gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	c, clk := newTestCache(t, 10, time.Minute, f)
	polled(c, clk)
	misses := counterValue(tokenCacheMisses)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, err := c.lookup(context.Background(), []byte("h1")); err != nil || d.ID != "d1" {
				t.Errorf("lookup: %+v, %v", d, err)
			}
		}()
	}
	<-f.entered
	// All 50 missed the cache while the first query is held.
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(tokenCacheMisses)-misses < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("only %v of 50 lookups missed the cache", counterValue(tokenCacheMisses)-misses)
		}
		time.Sleep(time.Millisecond)
	}
	close(f.gate)
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d store lookups for 50 concurrent handshakes of one token, want 1", n)
	}
}

func TestTokenCacheSizeCap(t *testing.T) {
	f := &fakeTokens{devs: map[string]storage.Device{"a": {ID: "a"}, "b": {ID: "b"}, "c": {ID: "c"}}}
	c, clk := newTestCache(t, 2, time.Minute, f)
	polled(c, clk)
	for _, h := range []string{"a", "b", "c"} {
		mustLookup(t, c, h)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Len() != 2 || len(c.byDevice) != 2 || c.byDevice["a"] != nil {
		t.Fatalf("size 2 after 3 tokens: %d entries, by device %v; want b and c", c.lru.Len(), c.byDevice)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
