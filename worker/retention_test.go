package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/worker"
	"go.uber.org/zap/zaptest"
)

// fillOld saves n locations and n logs over 20 devices with ts at, in
// batches, straight into the store.
func (e *env) fillOld(n int, at time.Time, idPrefix string) {
	e.t.Helper()
	ctx := context.Background()
	ts := at.UnixMilli()
	for start := 0; start < n; start += 1000 {
		var b storage.Batch
		for i := start; i < min(n, start+1000); i++ {
			dev := fmt.Sprintf("d%d", i%20)
			id := fmt.Sprintf("%s%d", idPrefix, i)
			b.Locations = append(b.Locations, storage.Location{Device: dev, ID: id, TS: ts + int64(i%1000), ReceivedAt: ts, Lat: 1, Lng: 2})
			b.Logs = append(b.Logs, storage.LogEntry{Device: dev, ID: id, TS: ts + int64(i%1000), ReceivedAt: ts, Level: "info", Message: "old reading " + id})
		}
		if _, err := e.store.SaveBatch(ctx, b); err != nil {
			e.t.Fatal(err)
		}
	}
}

// countRecords counts the locations of devices d0..d19 and all logs with ts
// in [from, to] (0: unbounded).
func (e *env) countRecords(from, to int64) (locs, logs int) {
	e.t.Helper()
	ctx := context.Background()
	for d := range 20 {
		q := storage.LocationQuery{Device: fmt.Sprintf("d%d", d), FromMS: from, ToMS: to, Limit: 1000}
		for {
			page, next, err := e.store.Locations(ctx, q)
			if err != nil {
				e.t.Fatal(err)
			}
			locs += len(page)
			if next == "" {
				break
			}
			q.Cursor = next
		}
	}
	q := storage.LogQuery{FromMS: from, ToMS: to, Limit: 1000}
	for {
		page, next, err := e.store.Logs(ctx, q)
		if err != nil {
			e.t.Fatal(err)
		}
		logs += len(page)
		if next == "" {
			return locs, logs
		}
		q.Cursor = next
	}
}

// watchedPurges wraps the store of one retention runner: it counts the
// Purge calls in progress across all runners that share active, and checks
// at each call that the lock in Redis names this runner.
type watchedPurges struct {
	worker.RetentionStore
	rdb    *redisq.Client
	token  func() string
	active *atomic.Int32
	most   *atomic.Int32
	calls  atomic.Int32
	first  atomic.Int64 // Unix ns of the first call
	errs   chan error
}

func (p *watchedPurges) Purge(ctx context.Context, kind storage.Kind, beforeMS int64, limit int) (int64, error) {
	p.calls.Add(1)
	p.first.CompareAndSwap(0, time.Now().UnixNano())
	n := p.active.Add(1)
	defer p.active.Add(-1)
	for m := p.most.Load(); n > m && !p.most.CompareAndSwap(m, n); m = p.most.Load() {
	}
	if h, err := p.rdb.LockHolder(ctx, "retention"); err != nil || h != p.token() {
		select {
		case p.errs <- fmt.Errorf("purge while the lock is held by %q (err %v), not by %q", h, err, p.token()):
		default:
		}
	}
	return p.RetentionStore.Purge(ctx, kind, beforeMS, limit)
}

// runRetention runs r until the test ends.
func runRetention(t *testing.T, r *worker.Retention) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("retention returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Two workers with retention on one store: one purges at a time, holding
// the lock; everything older than the bound goes, everything newer stays,
// and frames pushed while retention runs are stored.
func TestRetentionTwoWorkersPurgeOneAtATimeAndKeepDraining(t *testing.T) {
	e := newEnv(t)
	const old, recent = 3000, 500
	now := time.Now()
	e.fillOld(old, now.Add(-3*time.Hour), "old")
	e.fillOld(recent, now.Add(-30*time.Minute), "recent")

	var active, most atomic.Int32
	errs := make(chan error, 1)
	var rs []*worker.Retention
	var watched []*watchedPurges
	for i := range 2 {
		p := &watchedPurges{RetentionStore: e.store, rdb: e.rdb, active: &active, most: &most, errs: errs}
		r, err := worker.NewRetention(worker.RetentionConfig{
			Logs: time.Hour, Locations: time.Hour, Every: 20 * time.Millisecond,
			Chunk: 500, Share: 0.5, LockTTL: 3 * time.Second, Holder: fmt.Sprintf("w%d", i),
		}, e.rdb, p, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		p.token = r.Token
		rs, watched = append(rs, r), append(watched, p)
	}
	e.start(worker.Config{ID: "w0"}, nil)
	e.start(worker.Config{ID: "w1"}, nil)
	for _, r := range rs {
		runRetention(t, r)
	}

	// Frames pushed while the old records go.
	t0 := time.Now()
	checkFor(t, 10*time.Second, "retention to start", func() bool { return watched[0].calls.Load()+watched[1].calls.Load() > 0 })
	pushed := 0
	for r0, r1 := rs[0].Stats(), rs[1].Stats(); r0.Runs+r1.Runs == 0; r0, r1 = rs[0].Stats(), rs[1].Stats() {
		e.push(item("live", fmt.Sprintf("m%d", pushed), pushed))
		pushed++
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("retention run took %s", time.Since(t0))
	if pushed < 10 {
		t.Fatalf("retention finished after %d frames; the test wants it to run longer", pushed)
	}
	checkFor(t, 60*time.Second, "frames pushed during retention stored", func() bool { return len(e.stored("live")) == pushed })

	r0, r1 := rs[0].Stats(), rs[1].Stats()
	if r0.Logs+r1.Logs != old || r0.Locations+r1.Locations != old {
		t.Errorf("removed logs %d+%d, locations %d+%d; want %d each", r0.Logs, r1.Logs, r0.Locations, r1.Locations, old)
	}
	bound := now.Add(-time.Hour).UnixMilli()
	if locs, logs := e.countRecords(1, bound); locs != 0 || logs != 0 {
		t.Errorf("older than the bound after a run: %d locations, %d logs", locs, logs)
	}
	if locs, logs := e.countRecords(bound, 0); locs != recent || logs != recent {
		t.Errorf("newer than the bound: %d locations, %d logs; want %d each", locs, logs, recent)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d purges ran at once, want 1", m)
	}
	select {
	case err := <-errs:
		t.Error(err)
	default:
	}
	t.Logf("purge calls: %d and %d; frames pushed during the run: %d", watched[0].calls.Load(), watched[1].calls.Load(), pushed)
}

// killableLock is a Redis lock client of a process that can be killed:
// after kill, nothing it sends reaches Redis.
type killableLock struct {
	worker.RetentionLock
	dead atomic.Bool
}

var errKilled = errors.New("process killed")

func (k *killableLock) TryLock(ctx context.Context, job, token string, ttl time.Duration) (bool, error) {
	if k.dead.Load() {
		return false, errKilled
	}
	return k.RetentionLock.TryLock(ctx, job, token, ttl)
}

func (k *killableLock) RenewLock(ctx context.Context, job, token string, ttl time.Duration) (bool, error) {
	if k.dead.Load() {
		return false, errKilled
	}
	return k.RetentionLock.RenewLock(ctx, job, token, ttl)
}

func (k *killableLock) Unlock(ctx context.Context, job, token string) (bool, error) {
	if k.dead.Load() {
		return false, errKilled
	}
	return k.RetentionLock.Unlock(ctx, job, token)
}

// hangingPurges blocks every Purge until its context ends: a process that
// died in the middle of a chunk.
type hangingPurges struct{ started chan struct{} }

func (h *hangingPurges) Purge(ctx context.Context, _ storage.Kind, _ int64, _ int) (int64, error) {
	select {
	case h.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// A worker killed while it holds the lock leaves it behind; the lease runs
// out and another worker takes over and purges.
func TestRetentionLockOfAKilledWorkerExpiresAndAnotherTakesOver(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	e.fillOld(1000, now.Add(-3*time.Hour), "old")
	e.fillOld(100, now, "new")
	const ttl = 1500 * time.Millisecond
	cfg := worker.RetentionConfig{Logs: time.Hour, Locations: time.Hour, Every: 20 * time.Millisecond, LockTTL: ttl, Share: 0.5}

	lock := &killableLock{RetentionLock: e.rdb}
	hung := &hangingPurges{started: make(chan struct{}, 1)}
	cfg.Holder = "doomed"
	doomed, err := worker.NewRetention(cfg, lock, hung, nil)
	if err != nil {
		t.Fatal(err)
	}
	runRetention(t, doomed)
	<-hung.started
	lock.dead.Store(true)
	killed := time.Now()
	if h, err := e.rdb.LockHolder(context.Background(), "retention"); err != nil || h != doomed.Token() {
		t.Fatalf("lock holder at the kill = %q, %v; want the doomed worker", h, err)
	}

	var active, most atomic.Int32
	p := &watchedPurges{RetentionStore: e.store, rdb: e.rdb, active: &active, most: &most, errs: make(chan error, 1)}
	cfg.Holder = "heir"
	heir, err := worker.NewRetention(cfg, e.rdb, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.token = heir.Token
	runRetention(t, heir)
	checkFor(t, 60*time.Second, "the heir to finish a run", func() bool { return heir.Stats().Runs > 0 })
	// The lease was renewed at most a third of it before the kill.
	if took := time.Unix(0, p.first.Load()).Sub(killed); took < ttl*2/3-50*time.Millisecond {
		t.Errorf("the heir purged %s after the kill, before the dead holder's lease could end", took)
	}
	if s := heir.Stats(); s.Logs != 1000 || s.Locations != 1000 {
		t.Errorf("heir removed %d logs, %d locations; want 1000 each", s.Logs, s.Locations)
	}
	if locs, logs := e.countRecords(0, 0); locs != 100 || logs != 100 {
		t.Errorf("left %d locations, %d logs; want the 100 new of each", locs, logs)
	}
	select {
	case err := <-p.errs:
		t.Error(err)
	default:
	}
}

// Without a period retention does nothing; bad settings are refused.
func TestRetentionConfig(t *testing.T) {
	var p hangingPurges
	if _, err := worker.NewRetention(worker.RetentionConfig{Logs: -time.Hour}, &killableLock{}, &p, nil); err == nil {
		t.Error("negative period accepted")
	}
	if _, err := worker.NewRetention(worker.RetentionConfig{Logs: time.Hour, Share: 1.5}, &killableLock{}, &p, nil); err == nil {
		t.Error("share 1.5 accepted")
	}
	r, err := worker.NewRetention(worker.RetentionConfig{}, &killableLock{}, &p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Errorf("Run without periods = %v, want nil at once", err)
	}
}

// grantingLock is a lock that is always free.
type grantingLock struct{}

func (grantingLock) TryLock(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}
func (grantingLock) RenewLock(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}
func (grantingLock) Unlock(context.Context, string, string) (bool, error) { return true, nil }

// slowPurges removes 10 records per call for chunks calls, each taking 5 ms.
type slowPurges struct{ left atomic.Int32 }

func (p *slowPurges) Purge(ctx context.Context, _ storage.Kind, _ int64, _ int) (int64, error) {
	time.Sleep(5 * time.Millisecond)
	if p.left.Add(-1) < 0 {
		return 0, nil
	}
	return 10, nil
}

// A run pauses between chunks only while the worker has a backlog.
func TestRetentionPausesOnlyWhileTheWorkerIsBusy(t *testing.T) {
	for _, busy := range []bool{false, true} {
		p := &slowPurges{}
		p.left.Store(10)
		r, err := worker.NewRetention(worker.RetentionConfig{Logs: time.Hour, Share: 0.05, Busy: func() bool { return busy }},
			grantingLock{}, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if !r.RunOnce(context.Background()) {
			t.Fatal("no run")
		}
		took := time.Since(start)
		if s := r.Stats(); s.Logs != 100 || s.Runs != 1 {
			t.Fatalf("busy %v: stats %+v, want 100 logs in one run", busy, s)
		}
		// 10 chunks of 5 ms; busy, each is followed by a pause of 19 times it.
		if busy && took < 10*100*time.Millisecond*9/10 {
			t.Errorf("busy worker: the run took %s, want the pauses (about 1 s)", took)
		}
		if !busy && took > 500*time.Millisecond {
			t.Errorf("idle worker: the run took %s, want no pauses (about 50 ms)", took)
		}
	}
}
