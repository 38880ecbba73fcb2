package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// Retention deletes archived records older than their kind's retention
// period. Every worker may run it; a Redis lock makes one do it at a time
// across hosts, and whoever holds it at a tick purges. The store deletes in
// chunks (SQLite in short transactions, PostgreSQL drops whole partitions),
// and between chunks retention pauses in proportion to the chunk's time
// (RetentionConfig.Share) while the worker has a backlog, so that its
// batches, which wait for the same write lock and share the CPU, keep their
// pace.
type Retention struct {
	cfg   RetentionConfig
	lock  RetentionLock
	store RetentionStore
	log   *zap.Logger
	token string

	mu    sync.Mutex
	stats RetentionStats
}

// RetentionStore is the part of the store that retention uses.
type RetentionStore interface {
	// Purge removes up to about limit records of kind with ts < beforeMS
	// and returns how many; 0 means none is left.
	Purge(ctx context.Context, kind storage.Kind, beforeMS int64, limit int) (int64, error)
}

// RetentionLock is the lock that lets one process at a time run retention.
// *redisq.Client implements it.
type RetentionLock interface {
	// TryLock takes job's lock for token with a lease of ttl; false, at
	// once, if another holds it.
	TryLock(ctx context.Context, job, token string, ttl time.Duration) (bool, error)
	// RenewLock extends the lease if token still holds the lock; false if
	// it was lost.
	RenewLock(ctx context.Context, job, token string, ttl time.Duration) (bool, error)
	// Unlock releases the lock if token holds it.
	Unlock(ctx context.Context, job, token string) (bool, error)
}

// retentionJob names the lock (redisq key p:retention:lock).
const retentionJob = "retention"

// RetentionConfig says what to keep and how hard to work at deleting the
// rest. Zero values take the documented defaults.
type RetentionConfig struct {
	// Logs and Locations are how long records of each kind are kept,
	// counted back from now on the device timestamp (ts). 0 keeps them
	// forever, the default.
	Logs, Locations time.Duration
	// Every is the time from one run's start to the next. Default 1 min.
	Every time.Duration
	// Chunk is the most records one Purge call removes. Default 1000: on
	// SQLite a chunk of logs holds the write lock for about 0.6-0.8 s on a
	// loaded 2-core machine (each log also leaves the trigram index;
	// BenchmarkPurge), and a worker's batch waits that long at most. A
	// smaller chunk shortens that wait; the share of time stays the same.
	Chunk int
	// Share is the part of the time, from 0 to 1, that a run spends in the
	// store while the worker is busy: after a chunk that took d, retention
	// waits d*(1-Share)/Share. Default 0.1.
	Share float64
	// LockTTL is the lease of the lock; the holder renews it every third of
	// it, and a holder that dies frees it after at most this long.
	// Default 30 s.
	LockTTL time.Duration
	// Busy reports whether the worker draining beside retention has a
	// backlog (Worker.Busy). Only then does a run pause between chunks:
	// a worker that keeps up loses nothing to a faster purge, and a store
	// with much to delete gets it done. nil: always pause.
	Busy func() bool
	// Holder names this process in the lock's token. Default "worker".
	Holder string
	// StoreTimeout bounds one Purge call; RedisTimeout one lock call.
	// Defaults 30 s and 5 s.
	StoreTimeout, RedisTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Enabled reports whether any kind has a retention period.
func (c RetentionConfig) Enabled() bool { return c.Logs > 0 || c.Locations > 0 }

func (c *RetentionConfig) setDefaults() {
	if c.Every <= 0 {
		c.Every = time.Minute
	}
	if c.Chunk <= 0 {
		c.Chunk = 1000
	}
	if c.Share <= 0 || c.Share > 1 {
		c.Share = 0.1
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 30 * time.Second
	}
	if c.Holder == "" {
		c.Holder = "worker"
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 30 * time.Second
	}
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// RetentionStats counts what retention did since it started.
type RetentionStats struct {
	Runs      int64 // runs that held the lock and finished
	Logs      int64 // logs removed
	Locations int64 // locations removed
	LastRun   time.Time
}

// NewRetention returns a retention runner; Run does nothing when cfg
// enables no kind.
func NewRetention(cfg RetentionConfig, lock RetentionLock, store RetentionStore, log *zap.Logger) (*Retention, error) {
	if lock == nil || store == nil {
		return nil, errors.New("retention: lock and store are required")
	}
	if cfg.Logs < 0 || cfg.Locations < 0 {
		return nil, errors.New("retention: periods must not be negative (0 keeps forever)")
	}
	if cfg.Share < 0 || cfg.Share > 1 {
		return nil, fmt.Errorf("retention: share %v is not between 0 and 1", cfg.Share)
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg.setDefaults()
	if cfg.LockTTL < 3*time.Millisecond {
		return nil, fmt.Errorf("retention: lock ttl %s is too short", cfg.LockTTL)
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	token := cfg.Holder + "~" + hex.EncodeToString(nonce[:])
	return &Retention{cfg: cfg, lock: lock, store: store, log: log.With(zap.String("retention_holder", token)), token: token}, nil
}

// Token is what this runner stores in the lock while it holds it.
func (r *Retention) Token() string { return r.token }

// Stats returns a copy of the counters.
func (r *Retention) Stats() RetentionStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run tries a run at once and then every Every, until ctx ends; the chunk
// in progress is then abandoned (its transaction rolls back) and the lock
// released. It returns nil.
func (r *Retention) Run(ctx context.Context) error {
	if !r.cfg.Enabled() {
		return nil
	}
	r.log.Info("retention on", zap.Duration("logs", r.cfg.Logs), zap.Duration("locations", r.cfg.Locations),
		zap.Duration("every", r.cfg.Every), zap.Int("chunk", r.cfg.Chunk), zap.Float64("share", r.cfg.Share))
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		r.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce purges every kind that has a period if it gets the lock, and
// reports whether it did.
func (r *Retention) RunOnce(ctx context.Context) bool {
	c, cancel := context.WithTimeout(ctx, r.cfg.RedisTimeout)
	got, err := r.lock.TryLock(c, retentionJob, r.token, r.cfg.LockTTL)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("retention: take the lock", zap.Error(err))
		}
		return false
	}
	if !got {
		r.log.Debug("retention: another worker holds the lock")
		return false
	}

	// The run goes on as long as the lease does: if it cannot be renewed
	// (Redis unreachable for a whole lease, or it expired and another took
	// it), the run stops before a second purger could start.
	work, stop := context.WithCancel(ctx)
	var hold sync.WaitGroup
	hold.Add(1)
	go func() {
		defer hold.Done()
		r.hold(work, stop)
	}()
	start := time.Now()
	finished := r.purgeAll(work)
	stop()
	hold.Wait()

	// Released even after ctx ended (shutdown), within RedisTimeout; a lock
	// left behind frees itself after LockTTL.
	c, cancel = context.WithTimeout(context.WithoutCancel(ctx), r.cfg.RedisTimeout)
	if _, err := r.lock.Unlock(c, retentionJob, r.token); err != nil {
		r.log.Warn("retention: release the lock; it expires by itself", zap.Error(err))
	}
	cancel()

	if finished {
		now := time.Now()
		r.mu.Lock()
		r.stats.Runs++
		r.stats.LastRun = now
		r.mu.Unlock()
		retentionLastRun.Set(float64(now.UnixMilli()) / 1000)
		retentionRunSeconds.Set(now.Sub(start).Seconds())
	}
	return true
}

// hold renews the lease every third of LockTTL until ctx ends, and calls
// lost when the lock is gone or the lease ran out without a renewal.
func (r *Retention) hold(ctx context.Context, lost context.CancelFunc) {
	every := r.cfg.LockTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c, cancel := context.WithTimeout(ctx, min(r.cfg.RedisTimeout, every))
		ok, err := r.lock.RenewLock(c, retentionJob, r.token, r.cfg.LockTTL)
		cancel()
		switch {
		case ctx.Err() != nil:
			return // the run ended meanwhile
		case err == nil && ok:
			renewed = time.Now()
		case err == nil:
			r.log.Warn("retention: lost the lock; stopping this run")
			lost()
			return
		case time.Since(renewed) > r.cfg.LockTTL-every:
			// The lease ends before the next try: someone else may take it.
			r.log.Warn("retention: cannot renew the lock; stopping this run", zap.Error(err))
			lost()
			return
		default:
			r.log.Warn("retention: renew the lock", zap.Error(err))
		}
	}
}

// purgeAll purges each kind with a period in turn and reports whether all
// of them finished.
func (r *Retention) purgeAll(ctx context.Context) bool {
	now := r.cfg.Now()
	ok := true
	for _, k := range []struct {
		kind storage.Kind
		keep time.Duration
	}{{storage.KindLogs, r.cfg.Logs}, {storage.KindLocations, r.cfg.Locations}} {
		if k.keep <= 0 {
			continue
		}
		if !r.purge(ctx, k.kind, now.Add(-k.keep)) {
			ok = false
		}
	}
	return ok
}

// purge removes every record of kind older than before, chunk by chunk,
// pausing after each, and reports whether it got to the end.
func (r *Retention) purge(ctx context.Context, kind storage.Kind, before time.Time) bool {
	start := time.Now()
	var removed int64
	defer func() {
		if removed > 0 {
			r.log.Info("retention purged", zap.String("kind", string(kind)), zap.Int64("removed", removed),
				zap.Duration("took", time.Since(start)), zap.Time("before", before))
		}
	}()
	pause := (1 - r.cfg.Share) / r.cfg.Share
	for {
		t := time.Now()
		c, cancel := context.WithTimeout(ctx, r.cfg.StoreTimeout)
		n, err := r.store.Purge(c, kind, before.UnixMilli(), r.cfg.Chunk)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("retention: purge; trying again at the next run", zap.String("kind", string(kind)),
					zap.Int64("removed", removed), zap.Error(err))
			}
			return false
		}
		if n > 0 {
			removed += n
			retentionPurged.WithLabelValues(string(kind)).Add(float64(n))
			r.mu.Lock()
			if kind == storage.KindLogs {
				r.stats.Logs += n
			} else {
				r.stats.Locations += n
			}
			r.mu.Unlock()
		}
		if n == 0 {
			return true
		}
		if r.cfg.Busy != nil && !r.cfg.Busy() {
			continue
		}
		if !sleep(ctx, time.Duration(float64(time.Since(t))*pause)) {
			return false
		}
	}
}
