package worker_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/worker"
)

// register adds devices to the store.
func (e *env) register(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		h := sha256.Sum256([]byte("token of " + id))
		if err := e.store.AddDevice(context.Background(), storage.Device{ID: id, Group: "g", CreatedAt: time.Now().UnixMilli()}, h[:]); err != nil {
			e.t.Fatal(err)
		}
	}
}

// storedLogs returns the stored logs of device by id.
func (e *env) storedLogs(device string) map[string]storage.LogEntry {
	e.t.Helper()
	got := map[string]storage.LogEntry{}
	q := storage.LogQuery{Device: device, Limit: 1000}
	for {
		items, next, err := e.store.Logs(context.Background(), q)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, it := range items {
			got[it.ID] = it
		}
		if next == "" {
			return got
		}
		q.Cursor = next
	}
}

// deadReasons returns the error of each dead letter by the id in its item.
func (e *env) deadReasons() map[string]string {
	e.t.Helper()
	ds, err := e.rdb.DeadLetters(context.Background(), 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range ds {
		_, id, _ := strings.Cut(d.Key, "\n")
		out[id] = d.Error
	}
	return out
}

// A backend's item with times in seconds, or without them, is stored with
// Unix milliseconds (a missing ts is the receive time, as the gateway
// stamps it); negative and microsecond times are dead letters with their
// reason. Monolog's level names map onto devtrack's.
func TestProducerItemTimesAndLevelsAreNormalised(t *testing.T) {
	e := newEnv(t)
	e.register("d1")
	logItem := func(id, times, level string) []byte {
		return fmt.Appendf(nil, `{"device":"d1","id":%q,"type":"log"%s,"data":{"level":%q,"message":"m"}}`, id, times, level)
	}
	e.push(
		logItem("seconds", `,"ts":1763900000,"received_at":1763900001`, "NOTICE"),
		logItem("millis", `,"ts":1763900000123,"received_at":1763900000200`, "WARNING"),
		logItem("ts-missing", `,"received_at":1763900000200`, "ALERT"),
		logItem("seconds-ts-missing", `,"received_at":1763900001`, "EMERGENCY"),
		logItem("both-missing", ``, "CRITICAL"),
		logItem("negative", `,"ts":-5,"received_at":1763900000200`, "INFO"),
		logItem("micros", `,"ts":1763900000123000,"received_at":1763900000200`, "INFO"),
	)
	before := time.Now().UnixMilli()
	w, _ := e.start(worker.Config{Devices: e.store}, nil)
	checkFor(t, 10*time.Second, "5 stored, 2 dead", func() bool { return w.Stats().Stored == 5 && w.Stats().Dead == 2 })
	after := time.Now().UnixMilli()

	got := e.storedLogs("d1")
	for id, want := range map[string]struct {
		ts, receivedAt int64
		level          string
	}{
		"seconds":            {1763900000000, 1763900001000, "info"},
		"millis":             {1763900000123, 1763900000200, "warn"},
		"ts-missing":         {1763900000200, 1763900000200, "fatal"},
		"seconds-ts-missing": {1763900001000, 1763900001000, "fatal"},
	} {
		l := got[id]
		if l.TS != want.ts || l.ReceivedAt != want.receivedAt || l.Level != want.level {
			t.Errorf("%s stored with ts %d, received_at %d, level %q; want %d, %d, %q",
				id, l.TS, l.ReceivedAt, l.Level, want.ts, want.receivedAt, want.level)
		}
	}
	if l := got["both-missing"]; l.ReceivedAt < before || l.ReceivedAt > after || l.TS != l.ReceivedAt || l.Level != "fatal" {
		t.Errorf("both-missing stored with ts %d, received_at %d, level %q; want the worker's time (%d to %d) for both, fatal",
			l.TS, l.ReceivedAt, l.Level, before, after)
	}
	reasons := e.deadReasons()
	if r := reasons["negative"]; !strings.Contains(r, "ts -5 is negative") {
		t.Errorf("dead letter of negative: %q", r)
	}
	if r := reasons["micros"]; !strings.Contains(r, "microseconds or nanoseconds") {
		t.Errorf("dead letter of micros: %q", r)
	}
}

// countingDevices counts the store lookups of the worker.
type countingDevices struct {
	worker.DeviceLookup
	n atomic.Int32
}

func (c *countingDevices) Device(ctx context.Context, id string) (storage.Device, error) {
	c.n.Add(1)
	return c.DeviceLookup.Device(ctx, id)
}

// Items of a device nobody registered go to the dead letters with their
// reason, visible to queue stats and the dead-letter tools, after a few
// cached lookups rather than one per item; once the device is added, a
// requeue stores them.
func TestItemsOfUnknownDevicesAreDeadLetteredWithTheirReason(t *testing.T) {
	e := newEnv(t)
	e.register("d1")
	const n = 300
	var items [][]byte
	for i := range n {
		items = append(items, item("d1", fmt.Sprintf("k%d", i), i), item("ghost", fmt.Sprintf("g%d", i), i))
	}
	e.push(items...)
	lookups := &countingDevices{DeviceLookup: e.store}
	w, stop := e.start(worker.Config{BatchSize: 50, Devices: lookups}, nil)
	checkFor(t, 20*time.Second, "d1 stored, ghost dead", func() bool {
		return len(e.stored("d1")) == n && e.stats().Dead == n
	})
	if got := w.Stats().Dead; got != n {
		t.Fatalf("worker counted %d dead; want %d", got, n)
	}
	if len(e.stored("ghost")) != 0 {
		t.Fatal("items of an unknown device stored")
	}
	// Two devices, 12 batches: d1 is looked up once, ghost once a second.
	if c := lookups.n.Load(); c > 10 {
		t.Errorf("%d device lookups for %d items; want a few (cached)", c, 2*n)
	}
	for id, reason := range e.deadReasons() {
		if !strings.HasPrefix(id, "g") || !strings.Contains(reason, `unknown device "ghost": not registered`) {
			t.Fatalf("dead letter of %s: %q", id, reason)
		}
	}

	stop()
	e.register("ghost")
	if moved, err := e.rdb.RequeueDead(context.Background(), 0); err != nil || moved != n {
		t.Fatalf("requeue: %d, %v", moved, err)
	}
	e.start(worker.Config{BatchSize: 50, Devices: e.store}, nil)
	checkFor(t, 20*time.Second, "ghost stored once added", func() bool {
		s := e.stats()
		return len(e.stored("ghost")) == n && s.Dead == 0 && s.Pending == 0
	})
}
