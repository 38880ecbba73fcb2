package wsgateway

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"
)

// tokenCache answers device token lookups (the handshake of /ws/device and
// every HTTP ingest request) from memory, so that a reconnect storm costs the
// store one query per distinct token rather than one per handshake: once the
// gateway and the store are on different hosts, each lookup is a network
// round trip.
//
// What it must never do is weaken revocation. A revoke or a rotation is seen
// by the gateway's polls (revokeLoop, credentialsLoop), which report every
// round here:
//   - a device reported revoked loses all its entries; a device reported
//     rotated loses the entries read before its latest rotation;
//   - every such report bumps gen, and a lookup only stores its answer if gen
//     has not moved since its query began, so a read from before the revoke
//     that lands after the eviction cannot bring the entry back;
//   - an entry is only served while both polls have completed a round that
//     began less than tokenCacheMaxLag ago. A round that began after a revoke
//     saw it, so no entry outlives a revoke by more than tokenCacheMaxLag,
//     whatever the TTL and even when the polls fail (then lookups go to the
//     store, as they would without a cache).
//
// Only successful lookups are kept. Unknown and revoked tokens are not
// cached: a device just added (or a token just rotated) must work at its
// first handshake on every gateway, and random tokens from a scanner would
// otherwise push real devices out of a bounded cache. Concurrent lookups of
// one token share one query (singleflight), whatever their answer.
//
// Hand-written around the library's LRU rather than its expirable variant:
// expirable.NewLRU starts a goroutine that can never be stopped (v2.0.7), and
// the gateway owns and waits for every goroutine it starts. Expiry is checked
// when an entry is read; the size cap bounds what expired entries hold.
type tokenCache struct {
	load   deviceLookup
	ttl    time.Duration
	now    func() time.Time
	flight singleflight.Group

	mu       sync.Mutex
	lru      *simplelru.LRU[string, cachedDevice] // by string(token hash)
	byDevice map[string][]string                  // device id -> its keys in lru (one, two around a rotation)
	gen      uint64                               // bumped by every revoke or rotation seen
	// revokesAt and rotationsAt are when the last complete round of each
	// poll began (zero: none yet).
	revokesAt, rotationsAt time.Time
}

// deviceLookup is the store query the cache stands in front of.
type deviceLookup func(ctx context.Context, tokenHash []byte) (storage.Device, error)

type cachedDevice struct {
	dev     storage.Device
	expires time.Time
}

const (
	// tokenLookupTimeout bounds one store lookup of a device token. It is
	// detached from the request that started it: others may be waiting on
	// the same query (singleflight).
	tokenLookupTimeout = 2 * time.Second
	// tokenCacheMaxLag is how old the start of the last complete revoke and
	// rotation poll rounds may be for a cached entry to be served: the most
	// a cached entry can outlive a revoke or rotation, within the contract's
	// 5 s. With the default RevokePoll of 1 s, healthy polls keep well
	// inside it; it must stay above RevokePoll plus one round's query time,
	// or the cache is bypassed.
	tokenCacheMaxLag = 3 * time.Second
)

// newTokenCache returns a cache of at most size entries, each kept at most
// ttl, in front of load.
func newTokenCache(size int, ttl time.Duration, load deviceLookup) (*tokenCache, error) {
	c := &tokenCache{load: load, ttl: ttl, now: time.Now, byDevice: map[string][]string{}}
	lru, err := simplelru.NewLRU(size, c.unindex)
	if err != nil {
		return nil, fmt.Errorf("token cache of %d entries: %w", size, err)
	}
	c.lru = lru
	return c, nil
}

// deviceByToken resolves a device token hash: through the cache when there
// is one, else straight from the store.
func (g *Gateway) deviceByToken(ctx context.Context, tokenHash []byte) (storage.Device, error) {
	if g.tokens == nil {
		return g.store.DeviceByTokenHash(ctx, tokenHash)
	}
	return g.tokens.lookup(ctx, tokenHash)
}

// lookup returns the active device holding the token, from memory when it
// may, else from the store (one query for all concurrent callers with the
// same token). Errors are the store's (storage.ErrNotFound, ErrRevoked, ...).
func (c *tokenCache) lookup(ctx context.Context, tokenHash []byte) (storage.Device, error) {
	key := string(tokenHash)
	if d, ok := c.get(key); ok {
		tokenCacheHits.Inc()
		return d, nil
	}
	tokenCacheMisses.Inc()
	v, err, _ := c.flight.Do(key, func() (any, error) {
		// A query for this token may have ended between get and Do.
		if d, ok := c.get(key); ok {
			return d, nil
		}
		gen := c.generation()
		tokenStoreLookups.Inc()
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenLookupTimeout)
		defer cancel()
		d, err := c.load(lctx, tokenHash)
		if err != nil {
			return storage.Device{}, err
		}
		c.put(key, d, gen)
		return d, nil
	})
	return v.(storage.Device), err
}

func (c *tokenCache) get(key string) (storage.Device, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(key)
	if !ok {
		return storage.Device{}, false
	}
	if !now.Before(e.expires) {
		c.lru.Remove(key)
		return storage.Device{}, false
	}
	if !c.current(now) {
		tokenCacheBypassed.Inc()
		return storage.Device{}, false
	}
	return e.dev, true
}

// current reports whether both polls completed a round that began within
// tokenCacheMaxLag of now. Called with mu held.
func (c *tokenCache) current(now time.Time) bool {
	oldest := c.revokesAt
	if c.rotationsAt.Before(oldest) {
		oldest = c.rotationsAt
	}
	return !oldest.IsZero() && now.Sub(oldest) <= tokenCacheMaxLag
}

func (c *tokenCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores d under key unless a revoke or rotation was seen since gen was
// read: the answer may predate it.
func (c *tokenCache) put(key string, d storage.Device, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if old, ok := c.lru.Peek(key); ok && old.dev.ID != d.ID {
		c.unindex(key, old) // Add replaces a value without calling unindex
	}
	c.lru.Add(key, cachedDevice{dev: d, expires: c.now().Add(c.ttl)})
	if keys := c.byDevice[d.ID]; !slices.Contains(keys, key) {
		c.byDevice[d.ID] = append(keys, key)
	}
}

// unindex is the LRU's eviction callback (called with mu held): it keeps
// byDevice in step with the entries. A slice, not a set: a device has one
// token cached, two around a rotation, and 100,000 small maps would weigh
// several times what the entries do.
func (c *tokenCache) unindex(key string, e cachedDevice) {
	keys := slices.DeleteFunc(c.byDevice[e.dev.ID], func(k string) bool { return k == key })
	if len(keys) == 0 {
		delete(c.byDevice, e.dev.ID)
		return
	}
	c.byDevice[e.dev.ID] = keys
}

// revocationsChecked is told by each complete round of the revoke poll,
// which began at start, the devices it found revoked.
func (c *tokenCache) revocationsChecked(start time.Time, revoked []string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(revoked) > 0 {
		c.gen++
		for _, id := range revoked {
			// A copy: Remove calls unindex, which edits the slice.
			for _, key := range slices.Clone(c.byDevice[id]) {
				c.lru.Remove(key)
			}
		}
	}
	c.revokesAt = start
}

// rotationsChecked is told by each complete round of the rotation poll,
// which began at start, the devices whose token was replaced, as they are
// now: entries read before that rotation go.
func (c *tokenCache) rotationsChecked(start time.Time, rotated []storage.Device) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(rotated) > 0 {
		c.gen++
		for _, d := range rotated {
			for _, key := range slices.Clone(c.byDevice[d.ID]) {
				if e, ok := c.lru.Peek(key); ok && e.dev.TokenRotatedAt != d.TokenRotatedAt {
					c.lru.Remove(key)
				}
			}
		}
	}
	c.rotationsAt = start
}

// forget drops the entries of device id, whose record changed here (its
// default crs): the next lookup reads it again. Like a revoke it bumps gen,
// so that a lookup under way cannot store the record from before.
func (c *tokenCache) forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, key := range slices.Clone(c.byDevice[id]) {
		c.lru.Remove(key)
	}
}
