// Package devicecache remembers the store's answer to "is this device
// registered?" for the paths that take items from producers rather than from
// the gateway, which checks its own devices: the worker's check of producer
// items and the bridge. A backlog of a device's items then costs one store
// query, not one per item.
//
// A registered device is kept long (devices are revoked, never removed), an
// unknown one briefly, so that items that follow `devtrack device add` are
// taken soon. The cache holds at most Size devices: when full, the expired
// entries go, and if none has expired it starts over.
package devicecache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// Lookup is the store query behind the cache; an unregistered device is an
// error wrapping storage.ErrNotFound. storage.Store implements it.
type Lookup interface {
	Device(ctx context.Context, id string) (storage.Device, error)
}

// Config bounds a cache.
type Config struct {
	Size    int           // devices kept at most
	Known   time.Duration // how long a registered device is kept
	Unknown time.Duration // how long an unregistered one is
	Timeout time.Duration // of each store query; 0: the caller's context only
}

// Cache is a bounded cache of device lookups, safe for concurrent use.
type Cache struct {
	load Lookup
	cfg  Config
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	dev   *storage.Device // nil: not registered
	until time.Time
}

// New returns a cache of load's answers.
func New(load Lookup, cfg Config) *Cache {
	return &Cache{load: load, cfg: cfg, now: time.Now, entries: map[string]entry{}}
}

// Device returns the device id names, revoked or not, from the cache or
// else from the store (queried tells which). An unregistered device is an
// error wrapping storage.ErrNotFound, cached too; any other error of the
// store is returned and not cached.
func (c *Cache) Device(ctx context.Context, id string) (d storage.Device, queried bool, err error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if !ok || now.After(e.until) {
		qctx, cancel := ctx, context.CancelFunc(func() {})
		if c.cfg.Timeout > 0 {
			qctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		}
		d, err := c.load.Device(qctx, id)
		cancel()
		switch {
		case err == nil:
			e = entry{dev: &d, until: now.Add(c.cfg.Known)}
		case errors.Is(err, storage.ErrNotFound):
			e = entry{until: now.Add(c.cfg.Unknown)}
		default:
			return storage.Device{}, true, err
		}
		c.put(id, e, now)
		queried = true
	}
	if e.dev == nil {
		return storage.Device{}, queried, storage.ErrNotFound
	}
	return *e.dev, queried, nil
}

func (c *Cache) put(id string, e entry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.cfg.Size {
		for k, v := range c.entries {
			if now.After(v.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.cfg.Size {
			clear(c.entries)
		}
	}
	c.entries[id] = e
}
