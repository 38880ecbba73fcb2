package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
	"github.com/devtrack/devtrack/worker"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

type env struct {
	t     testing.TB
	srv   *redistest.Server
	rdb   *redisq.Client
	store *sqlite.Store
	log   *zap.Logger // the workers' logger; nil logs nothing
}

// newEnv starts a redis-server and opens a SQLite store in a temp dir.
func newEnv(t testing.TB) *env {
	t.Helper()
	srv := redistest.Start(t)
	rdb, err := redisq.Open(context.Background(), srv.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	return &env{t: t, srv: srv, rdb: rdb, store: openStoreIn(t, t.TempDir())}
}

// start runs a worker until the test ends; stop cancels it and waits.
func (e *env) start(cfg worker.Config, store worker.BatchStore) (w *worker.Worker, stop func()) {
	e.t.Helper()
	if store == nil {
		store = e.store
	}
	if cfg.Block == 0 {
		cfg.Block = 200 * time.Millisecond
	}
	w, err := worker.New(cfg, e.rdb, store, e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("worker returned %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return w, stop
}

func item(device, id string, i int) []byte {
	data, _ := json.Marshal(protocol.Location{Lat: 31 + float64(i)/1000, Lng: 121})
	b, _ := json.Marshal(protocol.Item{V: 1, Device: device, ID: id, Type: protocol.TypeLocation,
		TS: time.Now().UnixMilli(), ReceivedAt: time.Now().UnixMilli(), Data: data})
	return b
}

func (e *env) push(items ...[]byte) {
	e.t.Helper()
	if err := e.rdb.Push(context.Background(), items...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) stored(device string) map[string]int {
	e.t.Helper()
	return testutil.StoredLocations(e.t, e.store, device)
}

func (e *env) stats() redisq.Stats {
	e.t.Helper()
	s, err := e.rdb.Stats(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func checkFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.CheckFor(t, timeout, what, cond)
}

// subscribe collects the ids published on the live channels.
func (e *env) subscribe() func() map[string]int {
	e.t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	r := e.rdb.Redis()
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		_ = r.Receive(ctx, r.B().Psubscribe().Pattern(e.rdb.Keys().LivePattern()).Build(), func(m rueidis.PubSubMessage) {
			var l protocol.Live
			if json.Unmarshal([]byte(m.Message), &l) == nil {
				mu.Lock()
				got[l.ID]++
				mu.Unlock()
			}
		})
	}()
	go func() {
		// Wait until the subscription is registered: PUBSUB NUMPAT turns 1.
		for {
			n, err := r.Do(context.Background(), r.B().PubsubNumpat().Build()).AsInt64()
			if err == nil && n > 0 {
				once.Do(func() { close(ready) })
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		e.t.Fatal("subscription not ready")
	}
	e.t.Cleanup(cancel)
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range got {
			out[k] = v
		}
		return out
	}
}

func TestWorkerStoresPublishesAndClearsOncePerItem(t *testing.T) {
	e := newEnv(t)
	live := e.subscribe()
	var items [][]byte
	for i := range 1200 {
		items = append(items, item("d1", fmt.Sprintf("m%d", i), i))
	}
	// A retried frame: the same (device, id) pushed twice is stored once.
	items = append(items, item("d1", "m7", 7))
	e.push(items...)
	e.start(worker.Config{BatchSize: 100}, nil)
	checkFor(t, 20*time.Second, "all stored and published", func() bool {
		return len(e.stored("d1")) == 1200 && len(live()) == 1200
	})
	for id, n := range e.stored("d1") {
		if n != 1 {
			t.Fatalf("%s stored %d times", id, n)
		}
	}
	checkFor(t, 5*time.Second, "queue empty", func() bool {
		s := e.stats()
		return s.Pending == 0 && s.InFlight == 0 && s.Dead == 0
	})
	states, err := e.rdb.DeviceStates(context.Background())
	if err != nil || states["d1"].Location == nil || states["d1"].LastSeen == 0 {
		t.Fatalf("last position not recorded: %+v %v", states["d1"], err)
	}
}

func TestUndecodableItemIsDeadLetteredAndOthersStored(t *testing.T) {
	e := newEnv(t)
	e.push(item("d1", "a", 1), []byte(`{"this is":"not an item"`), []byte(`{"v":1,"device":"d1","id":"x","type":"location","ts":1,"data":{"lat":"NaN","lng":0}}`), item("d1", "b", 2))
	w, _ := e.start(worker.Config{}, nil)
	checkFor(t, 10*time.Second, "good items stored", func() bool { return len(e.stored("d1")) == 2 })
	checkFor(t, 5*time.Second, "two dead letters", func() bool { return e.stats().Dead == 2 })
	dead, err := e.rdb.DeadLetters(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dead {
		if d.Error == "" || d.Item == "" || d.Worker != w.ID() {
			t.Fatalf("dead letter lacks item, error or worker: %+v", d)
		}
	}
}

// flakyStore wraps the real store and refuses one id, or everything for a while.
type flakyStore struct {
	worker.BatchStore
	badID   string
	downFor atomic.Int32 // calls to refuse with a store-wide error
	calls   atomic.Int32
}

func (f *flakyStore) SaveBatch(ctx context.Context, b storage.Batch) (storage.SaveResult, error) {
	f.calls.Add(1)
	if f.downFor.Load() > 0 {
		f.downFor.Add(-1)
		return storage.SaveResult{}, errors.New("database is locked")
	}
	for _, l := range b.Locations {
		if l.ID == f.badID {
			return storage.SaveResult{}, fmt.Errorf("constraint failed for %s", l.ID)
		}
	}
	return f.BatchStore.SaveBatch(ctx, b)
}

// CheckWrite fails while the store is down, like a database whose lock is
// held: an error the store could not classify, that any write gets.
func (f *flakyStore) CheckWrite(ctx context.Context) error {
	if f.downFor.Load() > 0 {
		return errors.New("database is locked")
	}
	return f.BatchStore.CheckWrite(ctx)
}

func TestItemTheStoreKeepsRefusingGoesDeadAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	fs := &flakyStore{BatchStore: e.store, badID: "poison"}
	e.push(item("d1", "a", 1), item("d1", "poison", 2), item("d1", "b", 3))
	e.start(worker.Config{MaxAttempts: 3}, fs)
	checkFor(t, 20*time.Second, "poison buried", func() bool { return e.stats().Dead == 1 })
	got := e.stored("d1")
	if len(got) != 2 || got["a"] != 1 || got["b"] != 1 {
		t.Fatalf("stored %v; want a and b once", got)
	}
	dead, _ := e.rdb.DeadLetters(context.Background(), 0, 10)
	if len(dead) != 1 || dead[0].Attempts < 2 || !strings.Contains(dead[0].Error, "constraint failed") {
		t.Fatalf("dead letter %+v; want the poison with its error", dead)
	}
	// Requeued, it fails again and comes back: the dead list is not a black hole.
	n, err := e.rdb.RequeueDead(context.Background(), 10)
	if err != nil || n != 1 {
		t.Fatalf("requeue: %d %v", n, err)
	}
	checkFor(t, 20*time.Second, "poison buried again", func() bool { return e.stats().Dead == 1 && e.stats().Pending == 0 })
}

func TestStoreOutageIsWaitedOutWithoutDeadLetters(t *testing.T) {
	e := newEnv(t)
	fs := &flakyStore{BatchStore: e.store}
	fs.downFor.Store(6) // every save fails for a while
	for i := range 5 {
		e.push(item("d1", fmt.Sprintf("o%d", i), i))
	}
	e.start(worker.Config{MaxAttempts: 2}, fs)
	checkFor(t, 30*time.Second, "stored after the outage", func() bool { return len(e.stored("d1")) == 5 })
	if d := e.stats().Dead; d != 0 {
		t.Fatalf("%d items dead-lettered by a store outage", d)
	}
}

func TestInFlightItemsOfADeadWorkerAreRecovered(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A worker took three items and died: registered, heartbeat expired.
	if err := e.rdb.RegisterWorker(ctx, "dead-1", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	e.push(item("d1", "r1", 1), item("d1", "r2", 2), item("d1", "r3", 3))
	taken, err := e.rdb.Take(ctx, "dead-1", 10, 0)
	if err != nil || len(taken) != 3 {
		t.Fatalf("take: %v %v", taken, err)
	}
	checkFor(t, 2*time.Second, "heartbeat expired", func() bool {
		n, _ := e.rdb.Redis().Do(ctx, e.rdb.Redis().B().Exists().Key(e.rdb.Keys().WorkerAlive("dead-1")).Build()).AsInt64()
		return n == 0
	})
	w, _ := e.start(worker.Config{HeartbeatTTL: time.Second}, nil)
	checkFor(t, 10*time.Second, "recovered items stored", func() bool { return len(e.stored("d1")) == 3 })
	// The recovering goroutine counts after the items are back on the list,
	// so the count may trail the store by a moment.
	checkFor(t, 5*time.Second, "3 items counted as recovered", func() bool { return w.Stats().Recovered == 3 })
	checkFor(t, 5*time.Second, "nothing in flight", func() bool { s := e.stats(); return s.InFlight == 0 && s.Pending == 0 })
}

func TestItemThatCrashesEveryWorkerEndsInDeadLetters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.push(item("d1", "crasher", 1))
	// Three workers in a row take it and die.
	for i := range 3 {
		w := fmt.Sprintf("crashed-%d", i)
		if err := e.rdb.RegisterWorker(ctx, w, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkFor(t, 5*time.Second, "item available", func() bool {
			got, err := e.rdb.Take(ctx, w, 1, 0)
			return err == nil && len(got) == 1
		})
		time.Sleep(5 * time.Millisecond) // past the 1 ms heartbeat
		if _, err := e.rdb.RecoverDead(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.start(worker.Config{MaxAttempts: 3}, nil)
	checkFor(t, 10*time.Second, "crasher buried", func() bool { return e.stats().Dead == 1 })
	if got := e.stored("d1"); len(got) != 0 {
		t.Fatalf("crasher stored: %v", got)
	}
}

func TestStopReleasesNothingAndExitsCleanly(t *testing.T) {
	e := newEnv(t)
	_, stop := e.start(worker.Config{}, nil)
	for i := range 50 {
		e.push(item("d1", fmt.Sprintf("s%d", i), i))
	}
	checkFor(t, 10*time.Second, "stored", func() bool { return len(e.stored("d1")) == 50 })
	stop()
	s := e.stats()
	if s.Workers != 0 || s.InFlight != 0 {
		t.Fatalf("after stop: %+v; want no worker registered and nothing in flight", s)
	}
}

// A stop that lands while a heartbeat waits on Redis cuts that beat short:
// an operator stopping the worker must not read that as a fault.
func TestAStopDuringAHeartbeatLogsNoWarning(t *testing.T) {
	e := newEnv(t)
	core, logs := observer.New(zap.WarnLevel)
	e.log = zap.New(core)
	// Beats every 300 ms. Redis stays frozen for less than the TTL and less
	// than the client's own liveness checks.
	_, stop := e.start(worker.Config{HeartbeatTTL: 900 * time.Millisecond}, nil)
	time.Sleep(100 * time.Millisecond) // let it start
	e.srv.Pause()
	time.Sleep(350 * time.Millisecond) // one beat waits on Redis now
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // the stop cancels the waiting beat; nothing to poll for
	e.srv.Resume()
	<-stopped
	for _, l := range logs.All() {
		t.Errorf("logged at a stop: %s %s %v", l.Level, l.Message, l.ContextMap())
	}
}

// openStoreIn opens a migrated SQLite store in dir, closed when the test ends.
func openStoreIn(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A full disk: the worker holds the items (none is dead-lettered or counted
// against), reports the outage (Ready, the report in Redis that gateways
// read) and stores everything once space comes back, without a restart.
func TestFullDiskHoldsItemsUntilTheStoreWritesAgain(t *testing.T) {
	dir := testutil.Tmpfs(t, "4m")
	e := newEnv(t)
	e.store = openStoreIn(t, dir)
	ctx := context.Background()
	filler := testutil.Fill(t, dir)
	n := 0
	pushN := func(k int) {
		for range k {
			e.push(item("d1", fmt.Sprintf("f%d", n), n))
			n++
		}
	}
	pushN(3000)
	w, _ := e.start(worker.Config{MaxAttempts: 2, BatchSize: 200}, nil)

	outage := func(want bool) func() bool {
		return func() bool {
			o, err := e.rdb.CurrentStoreOutage(ctx)
			return err == nil && (o != nil) == want && (w.Ready(ctx) != nil) == want
		}
	}
	checkFor(t, 20*time.Second, "the outage reported by Ready and in Redis", outage(true))
	if s := e.stats(); s.Dead != 0 {
		t.Fatalf("full disk: %d items dead-lettered", s.Dead)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 30*time.Second, "all 3000 stored after space came back", func() bool { return len(e.stored("d1")) == 3000 })
	checkFor(t, 5*time.Second, "the outage cleared", outage(false))
	for id, c := range e.stored("d1") {
		if c != 1 {
			t.Fatalf("%s stored %d times", id, c)
		}
	}
	checkFor(t, 5*time.Second, "queue drained, nothing dead", func() bool {
		s := e.stats()
		return s.Pending == 0 && s.InFlight == 0 && s.Dead == 0
	})
}

// Redis freezes (SIGSTOP) again and again while the worker drains a
// backlog, longer than the Redis timeout and the client's connection write
// timeout (2 s), so that takes and finishes fail while Redis still runs them
// once it wakes up. Every item is stored
// exactly once and the queue ends empty.
// Redis frozen three times while a backlog drains, in batches of 100 and in
// batches of 5,000, which Redis sees as several calls each (takes and
// finishes of redisq.ItemsPerCall items): a stall between two of them
// fails the take or the finish half-way.
func TestRedisStallsDuringABacklogLoseNothing(t *testing.T) {
	for _, batch := range []int{100, 5000} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			redisStallsDuringABacklog(t, batch)
		})
	}
}

func redisStallsDuringABacklog(t *testing.T, batch int) {
	e := newEnv(t)
	srv := e.srv
	const total = 20000
	var items [][]byte
	for i := range total {
		items = append(items, item(fmt.Sprintf("d%d", i%3), fmt.Sprintf("s%d", i), i))
		if len(items) == 1000 {
			e.push(items...)
			items = items[:0]
		}
	}
	w, _ := e.start(worker.Config{BatchSize: batch, RedisTimeout: 300 * time.Millisecond, HeartbeatTTL: 30 * time.Second}, nil)
	for round := range 3 {
		before := w.Stats().Stored
		checkFor(t, 20*time.Second, "the worker draining", func() bool { return w.Stats().Stored > before || before+int64(batch) >= total })
		srv.Pause()
		t.Logf("round %d: Redis frozen with %d stored", round+1, w.Stats().Stored)
		time.Sleep(time.Duration(2500+1500*round) * time.Millisecond) // the stall itself
		srv.Resume()
	}
	storedAll := func() (n int) {
		for d := range 3 {
			n += len(e.stored(fmt.Sprintf("d%d", d)))
		}
		return n
	}
	checkFor(t, 60*time.Second, "all stored", func() bool { return storedAll() == total })
	for d := range 3 {
		for id, c := range e.stored(fmt.Sprintf("d%d", d)) {
			if c != 1 {
				t.Fatalf("d%d/%s stored %d times", d, id, c)
			}
		}
	}
	checkFor(t, 10*time.Second, "queue drained, nothing dead", func() bool {
		s := e.stats()
		return s.Pending == 0 && s.InFlight == 0 && s.Dead == 0
	})
}

// SIGTERM during a store outage: the worker stops waiting at once, gives the
// batch back to the queue (no attempt counted) and leaves.
func TestStopDuringAStoreOutageReturnsTheBatchAndExits(t *testing.T) {
	e := newEnv(t)
	fs := &flakyStore{BatchStore: e.store}
	fs.downFor.Store(1 << 30)
	for i := range 20 {
		e.push(item("d1", fmt.Sprintf("o%d", i), i))
	}
	w, stop := e.start(worker.Config{}, fs)
	checkFor(t, 10*time.Second, "the outage seen", func() bool { return w.Ready(context.Background()) != nil })
	start := time.Now()
	stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stop took %s during a store outage", took)
	}
	s := e.stats()
	if s.Pending != 20 || s.InFlight != 0 || s.Dead != 0 || s.Workers != 0 {
		t.Fatalf("after stop: %+v; want the 20 items back on the queue, nothing in flight or dead, no worker", s)
	}
	attempts, err := e.rdb.Attempts(context.Background(), []string{"d1\no0"})
	if err != nil || attempts[0] != 0 {
		t.Fatalf("attempts of o0 = %v, %v; want 0", attempts, err)
	}
}
