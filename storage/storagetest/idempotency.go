package storagetest

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

// idempotencyCases: Exactly once whatever the ts of a resent record (partitions, changed or missing ts).
var idempotencyCases = []testCase{
	{"ResendChangedTS", testResendChangedTS},
	{"ResendInsideOneBatch", testResendInsideOneBatch},
}

// Day and year in Unix ms: a store may partition by time, and a resent
// record must be found a duplicate in any other partition.
const (
	dayMS  = int64(24 * 60 * 60 * 1000)
	yearMS = 365 * dayMS
)

// dayEdge is the first ms of the UTC day after t0.
var dayEdge = (t0/dayMS + 1) * dayMS

// resends are the first and the resent ts of one (device, id): a frame
// resent without ts gets a new receive time as its ts, any time later.
var resends = []struct {
	name        string
	first, next int64
}{
	{"changed ts", t0, t0 + 5_000},
	{"over the day edge", dayEdge - 1, dayEdge},
	{"back over the day edge", dayEdge + 1, dayEdge - 2},
	{"a year later", t0 + 10, t0 + 10 + yearMS},
	{"a year earlier", t0 + 20, t0 + 20 - yearMS},
}

// testResendChangedTS stores each record, then resends it with another ts,
// receive time and content: the resend is a duplicate and the first version
// stays, the only one, where it was.
func testResendChangedTS(t *testing.T, st storage.Store) {
	var first, again storage.Batch
	for i, r := range resends {
		id := string(rune('a' + i))
		first.Locations = append(first.Locations, loc("d1", id, r.first))
		first.Logs = append(first.Logs, logEntry("d1", id, r.first, "info", "first "+r.name))
		l := loc("d1", id, r.next)
		l.Lat, l.ReceivedAt = 1, r.next+999
		again.Locations = append(again.Locations, l)
		e := logEntry("d1", id, r.next, "warn", "second "+r.name)
		e.ReceivedAt = r.next + 999
		again.Logs = append(again.Logs, e)
	}
	if diff := cmp.Diff(storage.SaveResult{Inserted: first.Len()}, save(t, st, first)); diff != "" {
		t.Fatalf("first: SaveResult (-want +got):\n%s", diff)
	}
	// One at a time (each its own batch and transaction), then all at once.
	for i := range resends {
		b := storage.Batch{Locations: again.Locations[i : i+1], Logs: again.Logs[i : i+1]}
		if diff := cmp.Diff(storage.SaveResult{Duplicates: 2}, save(t, st, b)); diff != "" {
			t.Errorf("resend %s: SaveResult (-want +got):\n%s", resends[i].name, diff)
		}
	}
	if diff := cmp.Diff(storage.SaveResult{Duplicates: again.Len()}, save(t, st, again)); diff != "" {
		t.Errorf("resend all: SaveResult (-want +got):\n%s", diff)
	}
	checkFirstVersions(t, st, first)
}

// testResendInsideOneBatch sends each record twice in one batch, the copies
// with ts on either side of a partition edge: one stored (the first), one a
// duplicate.
func testResendInsideOneBatch(t *testing.T, st storage.Store) {
	var b, first storage.Batch
	for i, r := range resends {
		id := string(rune('a' + i))
		l1, l2 := loc("d2", id, r.first), loc("d2", id, r.next)
		l2.Lat = 1
		e1, e2 := logEntry("d2", id, r.first, "info", "first "+r.name), logEntry("d2", id, r.next, "warn", "second "+r.name)
		b.Locations = append(b.Locations, l1, l2)
		b.Logs = append(b.Logs, e1, e2)
		first.Locations = append(first.Locations, l1)
		first.Logs = append(first.Logs, e1)
	}
	want := storage.SaveResult{Inserted: first.Len(), Duplicates: first.Len()}
	if diff := cmp.Diff(want, save(t, st, b)); diff != "" {
		t.Errorf("SaveResult (-want +got):\n%s", diff)
	}
	checkFirstVersions(t, st, first)
}

// checkFirstVersions checks that the device of want holds exactly want's
// records, newest first, and that each log is found once by its text.
func checkFirstVersions(t *testing.T, st storage.Store, want storage.Batch) {
	t.Helper()
	device := want.Locations[0].Device
	wantLocs := append([]storage.Location{}, want.Locations...)
	sortNewestFirst(wantLocs, func(l storage.Location) int64 { return l.TS })
	if diff := cmp.Diff(wantLocs, allLocations(t, st, storage.LocationQuery{Device: device, Limit: 2}), cmpOpts); diff != "" {
		t.Errorf("locations (-want +got):\n%s", diff)
	}
	wantLogs := append([]storage.LogEntry{}, want.Logs...)
	sortNewestFirst(wantLogs, func(e storage.LogEntry) int64 { return e.TS })
	if diff := cmp.Diff(wantLogs, allLogs(t, st, storage.LogQuery{Device: device, Limit: 2}), cmpOpts); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
	for _, e := range want.Logs {
		got := allLogs(t, st, storage.LogQuery{Device: device, Text: `"` + e.Message + `"`})
		if len(got) != 1 || got[0].ID != e.ID {
			t.Errorf("search %q: %d results %v, want %s once", e.Message, len(got), logIDs(got), e.ID)
		}
	}
	if got := allLogs(t, st, storage.LogQuery{Device: device, Text: "second"}); len(got) != 0 {
		t.Errorf("search for resent text: %v, want none", logIDs(got))
	}
}

// sortNewestFirst sorts records by ts, newest first.
func sortNewestFirst[T any](s []T, ts func(T) int64) {
	slices.SortStableFunc(s, func(a, b T) int {
		switch ta, tb := ts(a), ts(b); {
		case ta > tb:
			return -1
		case ta < tb:
			return 1
		}
		return 0
	})
}
