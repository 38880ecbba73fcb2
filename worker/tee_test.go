package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/worker"
)

const teeKey = "device:log:list"

// logItem is a producer's log item; its data keeps the producer's own
// spelling (level WARNING, a space after the colon) so that a test can tell
// the original data from the normalised one.
func logItem(device, id string) []byte {
	now := time.Now().UnixMilli()
	return fmt.Appendf(nil, `{"v":1,"device":%q,"id":%q,"type":"log","ts":%d,"received_at":%d,"data":{"level":"WARNING","message": %q}}`,
		device, id, now, now, device+"/"+id)
}

// teeData is what the tee list should hold for logItem(device, id).
func teeData(device, id string) string {
	return fmt.Sprintf(`{"level":"WARNING","message": %q}`, device+"/"+id)
}

// teeList returns the tee list in the order a BRPOP consumer would get it.
func (e *env) teeList() []string {
	e.t.Helper()
	r := e.rdb.Redis()
	got, err := r.Do(context.Background(), r.B().Lrange().Key(teeKey).Start(0).Stop(-1).Build()).AsStrSlice()
	if err != nil {
		e.t.Fatal(err)
	}
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	return got
}

// Every stored log reaches the tee list once, as its original data, in the
// order of the ingest list for each device; locations are not teed.
func TestTeeGetsEachStoredLogOnceInOrderPerDevice(t *testing.T) {
	e := newEnv(t)
	const perDevice = 300
	var items [][]byte
	for i := range perDevice {
		for _, d := range []string{"d1", "d2"} {
			items = append(items, logItem(d, "l"+strconv.Itoa(i)))
		}
		items = append(items, item("d1", "loc"+strconv.Itoa(i), i))
	}
	// One LPUSH of many elements pushes them in turn: the first is the
	// oldest, taken first.
	e.push(items...)
	w, _ := e.start(worker.Config{BatchSize: 70, TeeList: teeKey}, nil)
	checkFor(t, 20*time.Second, "all logs teed", func() bool { return w.Stats().Teed == 2*perDevice })
	got := e.teeList()
	if len(got) != 2*perDevice {
		t.Fatalf("tee list holds %d entries; want %d", len(got), 2*perDevice)
	}
	next := map[string]int{}
	for _, g := range got {
		var l struct{ Message string }
		if err := json.Unmarshal([]byte(g), &l); err != nil {
			t.Fatalf("tee entry %q: %v", g, err)
		}
		device, id, _ := strings.Cut(l.Message, "/")
		want := "l" + strconv.Itoa(next[device])
		if id != want || g != teeData(device, id) {
			t.Fatalf("tee entry %q; want %s of %s, as pushed", g, want, device)
		}
		next[device]++
	}
	if s := w.Stats(); s.TeeFailed != 0 || s.Stored != 3*perDevice {
		t.Fatalf("stats %+v; want %d stored, no tee failure", s, 3*perDevice)
	}
}

// Nobody reads the tee list: it keeps the newest TeeMax entries.
func TestTeeListStaysBoundedWithNobodyReading(t *testing.T) {
	e := newEnv(t)
	const total, keep = 1000, 100
	var items [][]byte
	for i := range total {
		items = append(items, logItem("d1", "b"+strconv.Itoa(i)))
	}
	e.push(items...)
	w, _ := e.start(worker.Config{BatchSize: 150, TeeList: teeKey, TeeMax: keep}, nil)
	checkFor(t, 20*time.Second, "all logs teed", func() bool { return w.Stats().Teed == total })
	got := e.teeList()
	if len(got) != keep {
		t.Fatalf("tee list holds %d entries; want %d", len(got), keep)
	}
	// The newest 100 stored are the last 100 pushed.
	newest := map[string]bool{}
	for _, it := range items[total-keep:] {
		var raw struct{ Data json.RawMessage }
		_ = json.Unmarshal(it, &raw)
		newest[string(raw.Data)] = true
	}
	for _, g := range got {
		if !newest[g] {
			t.Fatalf("tee list holds %q, not one of the newest %d", g, keep)
		}
	}
}

// An item the store already holds (as after a worker that died between its
// commit and its tee push) is teed again: at least once.
func TestTeeSendsAgainAnItemStoredBefore(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli()
	_, err := e.store.SaveBatch(context.Background(), storage.Batch{Logs: []storage.LogEntry{
		{Device: "d1", ID: "again", TS: now, ReceivedAt: now, Level: "warn", Message: "d1/again"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.push(logItem("d1", "again"))
	w, _ := e.start(worker.Config{TeeList: teeKey}, nil)
	checkFor(t, 10*time.Second, "the duplicate teed", func() bool { return w.Stats().Teed == 1 })
	if s := w.Stats(); s.Duplicates != 1 || s.Stored != 0 {
		t.Fatalf("stats %+v; want one duplicate, nothing new", s)
	}
	if got := e.teeList(); len(got) != 1 || got[0] != teeData("d1", "again") {
		t.Fatalf("tee list %q", got)
	}
}

// A tee push that fails (the key holds a string) neither loses nor holds
// the archive: everything is stored and finished, the failure counted.
func TestTeeFailureNeitherLosesNorHoldsTheArchive(t *testing.T) {
	e := newEnv(t)
	r := e.rdb.Redis()
	if err := r.Do(context.Background(), r.B().Set().Key(teeKey).Value("not a list").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		e.push(logItem("d1", "f"+strconv.Itoa(i)))
	}
	w, _ := e.start(worker.Config{TeeList: teeKey}, nil)
	// A batch's tee outcome is counted after its finish (and a second push):
	// wait for all 20 to be counted, teed or not, before reading which.
	checkFor(t, 10*time.Second, "all stored, finished and their tee counted", func() bool {
		s, ws := e.stats(), w.Stats()
		return ws.Stored == 20 && s.Pending == 0 && s.InFlight == 0 && ws.Teed+ws.TeeFailed == 20
	})
	if s := w.Stats(); s.TeeFailed != 20 || s.Teed != 0 || s.Dead != 0 {
		t.Fatalf("stats %+v; want 20 tee failures, nothing teed or dead", s)
	}
}
