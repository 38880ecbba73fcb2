package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// storeHealth is what the worker knows of the store: down from the first
// write that failed as an outage (storage.ErrUnavailable, or an error that
// the store's CheckWrite confirms) until the next write that succeeds.
type storeHealth struct {
	mu    sync.Mutex
	err   error
	since time.Time
}

// get returns when the state last changed and the outage's error (nil
// while the store writes).
func (h *storeHealth) get() (time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since, h.err
}

// set records the outcome of a write and reports whether the state changed.
func (h *storeHealth) set(err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	changed := (h.err == nil) != (err == nil)
	if changed {
		h.since = time.Now()
	}
	h.err = err
	return changed
}

// Ready reports why the worker cannot do its job now: the store cannot be
// written, or Redis does not answer. nil means ready.
func (w *Worker) Ready(ctx context.Context) error {
	if since, err := w.health.get(); err != nil {
		return fmt.Errorf("store unavailable since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	c, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := w.queue.Ping(c); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// storeFailed tells whether a failed save is a store outage rather than a
// fault of what was saved: the store said so (storage.ErrUnavailable), or
// it could not even make its smallest write (CheckWrite). An outage is
// recorded (metrics, Ready, the report in Redis that gateways read).
func (w *Worker) storeFailed(ctx context.Context, err error) bool {
	if errors.Is(err, storage.ErrInvalid) {
		return false
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		c, cancel := context.WithTimeout(ctx, w.cfg.StoreTimeout)
		perr := w.store.CheckWrite(c)
		cancel()
		if perr == nil {
			return false
		}
		err = fmt.Errorf("%w (and %w)", err, perr)
	}
	storeRetries.Inc()
	if w.health.set(err) {
		storeUp.Set(0)
		storeOutages.Inc()
		w.log.Error("store unavailable; holding the batch and retrying until it can write", zap.Error(err))
	}
	since, _ := w.health.get()
	o := redisq.StoreOutage{Worker: w.cfg.ID, Error: err.Error(), Since: since.UnixMilli()}
	if rerr := w.redis(ctx, func(c context.Context) error {
		// It outlives the longest wait between two retries: a store call
		// (StoreTimeout) and the backoff (5 s at most).
		return w.queue.ReportStoreOutage(c, o, w.cfg.StoreTimeout+w.cfg.HeartbeatTTL)
	}); rerr != nil {
		w.log.Warn("report store outage", zap.Error(rerr))
	}
	return true
}

// storeWorked records a successful write; it ends an outage.
func (w *Worker) storeWorked(ctx context.Context) {
	since, _ := w.health.get()
	if !w.health.set(nil) {
		return
	}
	storeUp.Set(1)
	w.log.Info("store writes again", zap.Duration("outage", time.Since(since)))
	if err := w.redis(ctx, func(c context.Context) error { return w.queue.ClearStoreOutage(c, w.cfg.ID) }); err != nil {
		w.log.Warn("clear store outage report", zap.Error(err))
	}
}
