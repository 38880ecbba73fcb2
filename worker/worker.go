// Package worker drains the ingest list into the store: the reliable form of
// BRPOP. A worker moves items into its own processing list, stores them in
// one transaction per batch (idempotent on device and id), publishes them for
// live viewers, and only then removes exactly those items from its processing
// list. Whatever else that list holds (moved by a call whose answer was lost
// in a Redis stall or restart, or not removed because the removal failed) is
// handed over again by the next take, so nothing waits there unseen. A worker
// that dies leaves its processing list behind; another worker notices its
// expired heartbeat and puts those items back, counting an attempt for each.
// An item that fails too often goes to the dead-letter list with its error.
// A store that cannot write (storage.ErrUnavailable, or confirmed by its
// CheckWrite) is an outage, not a fault of the items: the worker holds the
// batch and retries it until the store writes again, counting no attempt.
package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/internal/devicecache"
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
	// TakeMore takes the next batch while one is in hand (see process).
	TakeMore(ctx context.Context, worker string, max int) ([]string, error)
	InFlight(ctx context.Context, worker string) ([]string, error)
	Attempts(ctx context.Context, keys []string) ([]int, error)
	AddAttempt(ctx context.Context, key string) (int, error)
	AddAttempts(ctx context.Context, keys []string) ([]int, error)
	Done(ctx context.Context, worker string, items, attemptKeys []string) (int, error)
	Bury(ctx context.Context, worker string, d redisq.DeadLetter) error
	Release(ctx context.Context, worker string) (int, error)
	RecoverDead(ctx context.Context) (map[string]int, error)
	PublishLive(ctx context.Context, msgs []redisq.LiveMessage) error
	// DeviceStates returns the links and last-seen times of every device
	// (the offline scan, offline.go).
	DeviceStates(ctx context.Context) (map[string]redisq.DeviceState, error)
	// Tee LPUSHes values (the first given is the first a BRPOP gets) onto
	// the list key, as given, and trims it to max entries, in one pipeline.
	Tee(ctx context.Context, key string, max int, values [][]byte) error
	ReportStoreOutage(ctx context.Context, o redisq.StoreOutage, ttl time.Duration) error
	ClearStoreOutage(ctx context.Context, worker string) error
	Ping(ctx context.Context) error
}

// BatchStore stores one batch in one transaction, idempotently. SaveBatch
// errors wrap storage.ErrInvalid for records that can never be stored and
// storage.ErrUnavailable for a store that cannot write; CheckWrite makes the
// smallest write, to tell the rest apart.
type BatchStore interface {
	SaveBatch(ctx context.Context, b storage.Batch) (storage.SaveResult, error)
	CheckWrite(ctx context.Context) error
}

var _ Queue = (*redisq.Client)(nil)

// Config tunes a worker. Zero values take the documented defaults.
type Config struct {
	// ID names the worker and its processing list. Default: host-pid-random.
	// A worker restarted with the same ID first takes back its own in-flight items.
	ID string
	// BatchSize is the most items stored in one transaction. Default
	// DefaultBatchSize, at most MaxBatchSize.
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
	// StopTimeout is how long, once Run's context ends, the batch in hand
	// may take to finish; past it the calls in progress are cancelled and
	// the batch stays in the processing list, for the next start or another
	// worker to recover. The release that follows takes up to three Redis
	// calls (RedisTimeout each): keep the sum under the supervisor's stop
	// timeout (systemd's TimeoutStopSec=30). Default 10 s.
	StopTimeout time.Duration
	// TeeList, when set, is a Redis list (a key as given, without the
	// prefix, e.g. "device:log:list") onto which the worker LPUSHes the
	// original data of each log item once its batch is stored, for a legacy
	// consumer that BRPOPs it; see tee.go for order, duplicates and faults.
	// Default "": no tee.
	TeeList string
	// TeeMax is how many entries the tee list keeps (the newest); each
	// push trims it, so it stays bounded with nobody reading. Default 100000.
	TeeMax int
	// Devices, when set, is where the worker checks that each item's device
	// is registered: an item of an unknown device goes to the dead letters
	// with that reason (see producer.go). Lookups are cached: a registered
	// device for 10 minutes, an unknown one for a second, 100,000 devices at
	// most. Default nil: every device is taken as registered (devtrack
	// worker sets the store).
	Devices DeviceLookup

	// Alerting (alerts.go, offline.go, webhook.go) runs when the store
	// implements AlertStore. AlertsPoll is how often geofences and rules are
	// read again (default 2 s; negative: no alerting). OfflineScan is how
	// often last-seen times are scanned for offline rules (default 10 s;
	// negative: none). OfflineMinute is the length of one minute of an
	// offline rule's OfflineMinutes (default 1 min; tests shorten it).
	// WebhookPoll is how often the sender looks for due deliveries (default
	// 1 s; negative: no sender), WebhookTimeout bounds one POST (default
	// 10 s), WebhookLease is a claim's lease (default 30 s, at least twice
	// WebhookTimeout), WebhookGiveUp the age of an alert past which a
	// failed delivery is abandoned (default 24 h).
	AlertsPoll     time.Duration
	OfflineScan    time.Duration
	OfflineMinute  time.Duration
	WebhookPoll    time.Duration
	WebhookTimeout time.Duration
	WebhookLease   time.Duration
	WebhookGiveUp  time.Duration
}

// DefaultBatchSize is the default Config.BatchSize. A batch is one commit:
// with SQLite every commit writes each index page the batch touched to the
// WAL (one per device and index when devices interleave), with PostgreSQL
// it waits for one WAL flush, so a draining backlog costs less per item in
// larger batches. Draining 1,000,000 items of 1,000 devices (scripts/bench
// drain, one worker, single runs): SQLite 34-43k items/s at 2,000, 51-61k at
// 5,000, 69-79k at 10,000, 87-89k at 20,000, 99k at 50,000; PostgreSQL 35k
// at 2,000, 46k at 20,000. A worker that keeps up takes what is there, so
// small batches stay small; Redis sees a large one as calls of
// redisq.ItemsPerCall items.
const DefaultBatchSize = 20_000

// DefaultTeeMax is the default Config.TeeMax.
const DefaultTeeMax = 100_000

// MaxBatchSize bounds Config.BatchSize: a worker holds two batches (the one
// being stored and the next, prefetched), decoded, about 1 KB an item.
const MaxBatchSize = 100_000

func (c *Config) setDefaults() {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), strconv.FormatInt(time.Now().UnixNano()%1e6, 36))
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	c.BatchSize = min(c.BatchSize, MaxBatchSize)
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
	if c.StopTimeout <= 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.TeeMax <= 0 {
		c.TeeMax = DefaultTeeMax
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.AlertsPoll, 2 * time.Second}, {&c.OfflineScan, 10 * time.Second}, {&c.OfflineMinute, time.Minute},
		{&c.WebhookPoll, time.Second}, {&c.WebhookTimeout, 10 * time.Second}, {&c.WebhookGiveUp, 24 * time.Hour},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.OfflineMinute < 0 {
		c.OfflineMinute = time.Minute
	}
	if c.WebhookTimeout < 0 {
		c.WebhookTimeout = 10 * time.Second
	}
	c.WebhookLease = max(c.WebhookLease, 30*time.Second, 2*c.WebhookTimeout)
}

// Worker drains the ingest list. Create it with New and call Run.
type Worker struct {
	cfg   Config
	queue Queue
	store BatchStore
	log   *zap.Logger

	health storeHealth
	// devices caches device lookups (Config.Devices); nil without them.
	devices *devicecache.Cache
	// alerts is nil without alerting (alerts.go).
	alerts *alerting
	// fullAt is when a take last handed over a full batch (Unix ns): the
	// list had a backlog then (Busy).
	fullAt atomic.Int64

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
	Teed       int64 // log items pushed onto the tee list
	TeeFailed  int64 // stored log items left out of the tee list: both pushes failed
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
	w := &Worker{cfg: cfg, queue: q, store: s, log: log.With(zap.String("worker", cfg.ID))}
	if cfg.Devices != nil {
		w.devices = devicecache.New(cfg.Devices, devicecache.Config{
			Size: deviceCacheSize, Known: deviceKnownTTL, Unknown: deviceUnknownTTL, Timeout: cfg.StoreTimeout})
	}
	w.alerts = newAlerting(s, w.devices, cfg)
	return w, nil
}

// Busy reports whether the worker is draining a backlog: a take handed it
// a full batch within the last two seconds. A worker that gets less keeps
// up with what arrives.
func (w *Worker) Busy() bool {
	return time.Since(time.Unix(0, w.fullAt.Load())) < 2*time.Second
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
// is finished (stored, published, cleared) before Run returns nil, within
// StopTimeout; a batch held by a store outage is not waited for: it goes back
// to the ingest list.
func (w *Worker) Run(ctx context.Context) error {
	// Redis and store calls run on work, which outlives ctx so that a
	// SIGTERM never cuts a batch in half, but only by StopTimeout: a store or
	// Redis that hangs must not keep the worker past its supervisor's patience.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	finished := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		w.cancelAfterStopTimeout(ctx, finished, cancelWork)
	}()
	defer func() {
		close(finished)
		bg.Wait()
	}()

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

	// Alerting's loops stop with ctx and are waited for before Run
	// returns (and the store closes).
	stopAlerting := w.startAlerting(ctx, work)
	defer stopAlerting()

	// A previous process with this id may have left items in flight: each
	// counts an attempt, in case it is what made that process crash.
	if items, err := w.inFlight(work); err != nil {
		w.log.Warn("read own in-flight items", zap.Error(err))
	} else if len(items) > 0 {
		w.log.Info("resuming own in-flight items", zap.Int("items", len(items)))
		w.process(work, ctx, w.prepare(work, items, true), false)
	}

	// unanswered turns true once a take failed: Redis may still run that
	// call (a blocking move it reads after a stall), after this worker
	// released its list and left.
	unanswered := false
	// While a take hands over full batches (a backlog), each batch is
	// stored while the next is taken and decoded (process, TakeMore).
	// next is that batch; clean tells that the processing list holds only
	// it, else the next batch comes from Take, which hands over everything
	// the list holds.
	var next *batch
	clean := true
	for ctx.Err() == nil {
		b := next
		next = nil
		if b.len() == 0 {
			items, err := w.take(work)
			if err != nil {
				unanswered = true
				w.log.Warn("take from queue", zap.Error(err))
				sleep(ctx, time.Second)
				continue
			}
			clean = true
			if len(items) == 0 {
				continue
			}
			b = w.prepare(work, items, false)
		}
		full := b.len() >= w.cfg.BatchSize
		if full {
			w.fullAt.Store(time.Now().UnixNano())
		}
		var ok bool
		next, ok = w.process(work, ctx, b, full && clean)
		clean = clean && ok
	}

	// Shutdown order: whatever is left in our processing list goes back to
	// the queue uncounted; then the heartbeat stops and we leave the set of
	// workers, so nobody needs to recover us. After an unanswered take we
	// stay in the set with our heartbeat gone: whatever that take may still
	// move is then recovered by another worker, or by our next start.
	// Each of these calls has RedisTimeout, even past the stop timeout:
	// what they fail to do is recovered later, counting an attempt.
	release := context.WithoutCancel(ctx)
	var n int
	if rerr := w.redis(release, func(c context.Context) (err error) {
		n, err = w.queue.Release(c, w.cfg.ID)
		return err
	}); rerr != nil {
		w.log.Warn("release in-flight items; they will be recovered", zap.Error(rerr))
		unanswered = true
	} else if n > 0 {
		w.log.Info("released in-flight items", zap.Int("items", n))
	}
	stopBeat()
	beats.Wait()
	if unanswered {
		if err := w.redis(release, func(c context.Context) error { return w.queue.WorkerHeartbeat(c, w.cfg.ID, time.Millisecond) }); err != nil {
			w.log.Warn("drop heartbeat", zap.Error(err))
		}
	} else if uerr := w.redis(release, func(c context.Context) error { return w.queue.UnregisterWorker(c, w.cfg.ID) }); uerr != nil {
		w.log.Warn("unregister", zap.Error(uerr))
	}
	s := w.Stats()
	w.log.Info("worker stopped", zap.Int64("stored", s.Stored), zap.Int64("duplicates", s.Duplicates), zap.Int64("dead", s.Dead))
	return nil
}

// cancelAfterStopTimeout cancels the work context StopTimeout after ctx
// ends, unless Run finished first.
func (w *Worker) cancelAfterStopTimeout(ctx context.Context, finished <-chan struct{}, cancel context.CancelFunc) {
	select {
	case <-finished:
		return
	case <-ctx.Done():
	}
	t := time.NewTimer(w.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		w.log.Warn("stop timeout passed; abandoning the calls in progress", zap.Duration("stop_timeout", w.cfg.StopTimeout))
		cancel()
	}
}

// take hands over the next batch: what the processing list still holds,
// topped up from the ingest list, or blocks up to Block for one item.
func (w *Worker) take(ctx context.Context) ([]string, error) {
	c, cancel := context.WithTimeout(ctx, w.cfg.RedisTimeout+w.cfg.Block)
	defer cancel()
	return w.queue.Take(c, w.cfg.ID, w.cfg.BatchSize, w.cfg.Block)
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
			if ctx.Err() == nil { // a beat cut short by a stop is no fault
				w.log.Warn("heartbeat", zap.Error(err))
			}
			continue
		}
		w.recoverDead(ctx)
	}
}

func (w *Worker) recoverDead(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, w.cfg.RedisTimeout)
	defer cancel()
	got, err := w.queue.RecoverDead(c)
	if err != nil && ctx.Err() == nil {
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

// sleep waits d and reports true, or false as soon as ctx ends.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
