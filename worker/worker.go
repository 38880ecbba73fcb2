// Package worker drains the ingest list into the store: the reliable form of
// BRPOP. A worker moves items into its own processing list, stores them in
// one transaction per batch (idempotent on device and id), publishes them for
// live viewers, and only then clears its processing list. A worker that dies
// leaves its processing list behind; another worker notices its expired
// heartbeat and puts those items back, counting an attempt for each. An item
// that fails too often goes to the dead-letter list with its error.
package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// Queue is the part of Redis a worker uses. *redisq.Client implements it.
type Queue interface {
	RegisterWorker(ctx context.Context, worker string, ttl time.Duration) error
	WorkerHeartbeat(ctx context.Context, worker string, ttl time.Duration) error
	UnregisterWorker(ctx context.Context, worker string) error
	Take(ctx context.Context, worker string, max int, block time.Duration) ([]string, error)
	InFlight(ctx context.Context, worker string) ([]string, error)
	Attempts(ctx context.Context, keys []string) ([]int, error)
	AddAttempt(ctx context.Context, key string) (int, error)
	Done(ctx context.Context, worker string, attemptKeys []string) error
	Bury(ctx context.Context, worker string, d redisq.DeadLetter) error
	Release(ctx context.Context, worker string) (int, error)
	RecoverDead(ctx context.Context) (map[string]int, error)
	PublishLive(ctx context.Context, msgs []redisq.LiveMessage) error
}

// BatchStore stores one batch in one transaction, idempotently.
type BatchStore interface {
	SaveBatch(ctx context.Context, b storage.Batch) (storage.SaveResult, error)
}

var _ Queue = (*redisq.Client)(nil)

// Config tunes a worker. Zero values take the documented defaults.
type Config struct {
	// ID names the worker and its processing list. Default: host-pid-random.
	// A worker restarted with the same ID first takes back its own in-flight items.
	ID string
	// BatchSize is the most items stored in one transaction. Default 500.
	BatchSize int
	// Block is how long one blocking pop waits for an item. Default 1 s.
	Block time.Duration
	// HeartbeatTTL is how long the worker counts as alive after a heartbeat;
	// it beats every third of it and looks for dead workers as often. Default 15 s.
	HeartbeatTTL time.Duration
	// MaxAttempts is how many failed attempts (store errors or worker crashes)
	// an item gets before it goes to the dead-letter list. Default 5.
	MaxAttempts int
	// StoreTimeout bounds one store transaction. Default 30 s.
	StoreTimeout time.Duration
	// RedisTimeout bounds one Redis call. Default 5 s.
	RedisTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), strconv.FormatInt(time.Now().UnixNano()%1e6, 36))
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.Block <= 0 {
		c.Block = time.Second
	}
	if c.HeartbeatTTL <= 0 {
		c.HeartbeatTTL = 15 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 30 * time.Second
	}
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = 5 * time.Second
	}
}

// Worker drains the ingest list. Create it with New and call Run.
type Worker struct {
	cfg   Config
	queue Queue
	store BatchStore
	log   *zap.Logger

	mu    sync.Mutex
	stats Stats
}

// Stats counts what a worker did since it started.
type Stats struct {
	Stored     int64 // new records committed
	Duplicates int64 // records already in the store
	Dead       int64 // items sent to the dead-letter list
	Recovered  int64 // items put back from dead workers
	Batches    int64
}

// New returns a worker.
func New(cfg Config, q Queue, s BatchStore, log *zap.Logger) (*Worker, error) {
	if q == nil || s == nil {
		return nil, errors.New("worker: queue and store are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg.setDefaults()
	return &Worker{cfg: cfg, queue: q, store: s, log: log.With(zap.String("worker", cfg.ID))}, nil
}

// ID is the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Stats returns a copy of the counters.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Run drains the list until ctx is cancelled. The batch in hand when ctx ends
// is finished (stored, published, cleared) before Run returns nil.
func (w *Worker) Run(ctx context.Context) error {
	// Redis and store calls run on a context that outlives ctx, so that a
	// SIGTERM never cuts a batch in half; each call has its own timeout.
	work := context.WithoutCancel(ctx)

	if err := w.redis(work, func(c context.Context) error {
		return w.queue.RegisterWorker(c, w.cfg.ID, w.cfg.HeartbeatTTL)
	}); err != nil {
		return fmt.Errorf("worker start: %w", err)
	}
	w.log.Info("worker started", zap.Int("batch_size", w.cfg.BatchSize), zap.Duration("heartbeat_ttl", w.cfg.HeartbeatTTL))

	beatCtx, stopBeat := context.WithCancel(work)
	var beats sync.WaitGroup
	beats.Add(1)
	go func() {
		defer beats.Done()
		w.heartbeat(beatCtx)
	}()

	// A previous process with this id may have left items in flight.
	if items, err := w.inFlight(work); err != nil {
		w.log.Warn("read own in-flight items", zap.Error(err))
	} else if len(items) > 0 {
		w.log.Info("resuming own in-flight items", zap.Int("items", len(items)))
		w.process(work, items, true)
	}

	var err error
	for ctx.Err() == nil {
		var items []string
		items, err = w.queue.Take(ctx, w.cfg.ID, w.cfg.BatchSize, w.cfg.Block)
		if ctx.Err() != nil {
			// The blocking move may have moved an item whose answer was
			// lost; whatever is in the processing list is handled below.
			err = nil
			break
		}
		if err != nil {
			w.log.Warn("take from queue", zap.Error(err))
			sleep(ctx, time.Second)
			err = nil
			continue
		}
		if len(items) > 0 {
			w.process(work, items, false)
		}
	}

	// Shutdown order: whatever is left in our processing list goes back to
	// the queue uncounted; then the heartbeat stops and we leave the set of
	// workers, so nobody needs to recover us.
	if items, ierr := w.inFlight(work); ierr == nil && len(items) > 0 {
		var n int
		if rerr := w.redis(work, func(c context.Context) (err error) {
			n, err = w.queue.Release(c, w.cfg.ID)
			return err
		}); rerr != nil {
			w.log.Warn("release in-flight items", zap.Error(rerr))
		} else {
			w.log.Info("released in-flight items", zap.Int("items", n))
		}
	}
	stopBeat()
	beats.Wait()
	if uerr := w.redis(work, func(c context.Context) error { return w.queue.UnregisterWorker(c, w.cfg.ID) }); uerr != nil {
		w.log.Warn("unregister", zap.Error(uerr))
	}
	s := w.Stats()
	w.log.Info("worker stopped", zap.Int64("stored", s.Stored), zap.Int64("duplicates", s.Duplicates), zap.Int64("dead", s.Dead))
	return err
}

func (w *Worker) inFlight(ctx context.Context) ([]string, error) {
	c, cancel := context.WithTimeout(ctx, w.cfg.RedisTimeout)
	defer cancel()
	return w.queue.InFlight(c, w.cfg.ID)
}

// heartbeat renews the heartbeat and recovers dead workers' items until ctx ends.
func (w *Worker) heartbeat(ctx context.Context) {
	every := w.cfg.HeartbeatTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	w.recoverDead(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.redis(ctx, func(c context.Context) error {
			return w.queue.WorkerHeartbeat(c, w.cfg.ID, w.cfg.HeartbeatTTL)
		}); err != nil {
			w.log.Warn("heartbeat", zap.Error(err))
			continue
		}
		w.recoverDead(ctx)
	}
}

func (w *Worker) recoverDead(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, w.cfg.RedisTimeout)
	defer cancel()
	got, err := w.queue.RecoverDead(c)
	if err != nil {
		w.log.Warn("recover dead workers", zap.Error(err))
	}
	for dead, n := range got {
		w.log.Info("recovered items of a dead worker", zap.String("dead_worker", dead), zap.Int("items", n))
		w.mu.Lock()
		w.stats.Recovered += int64(n)
		w.mu.Unlock()
	}
}

// redis runs fn with the Redis timeout.
func (w *Worker) redis(ctx context.Context, fn func(context.Context) error) error {
	c, cancel := context.WithTimeout(ctx, w.cfg.RedisTimeout)
	defer cancel()
	return fn(c)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
