package storagetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

// retentionCases: Purge and DeleteRecords: retention and export remove exactly what they name.
var retentionCases = []testCase{
	{"PurgeExactlyBeforeBound", testPurgeExactlyBeforeBound},
	{"PurgeInChunks", testPurgeInChunks},
	{"PurgeNothingToDo", testPurgeNothingToDo},
	{"PurgeThenSearch", testPurgeThenSearch},
	{"PurgeThenResend", testPurgeThenResend},
	{"PurgeUnknownKind", testPurgeUnknownKind},
	{"DeleteRecords", testDeleteRecords},
	{"DeleteRecordsManyIDs", testDeleteRecordsManyIDs},
}

const (
	day = int64(24 * 60 * 60 * 1000)
	// bound is the retention bound of these cases, in the middle of a day
	// so that a store partitioned by time must split a partition.
	bound = t0 + 12*60*60*1000
)

// retentionTimes are the timestamps of the fixture: far older than the
// bound (whole partitions to drop), just older, exactly on it, newer.
var retentionTimes = []int64{bound - 40*day, bound - 8*day, bound - day, bound - 1, bound, bound + 1, bound + day}

// retentionFixture saves a location and a log per device and timestamp
// and returns the batch.
func retentionFixture(t *testing.T, st storage.Store) storage.Batch {
	t.Helper()
	var b storage.Batch
	for _, dev := range []string{"d1", "d2", "d3"} {
		for i, ts := range retentionTimes {
			id := fmt.Sprintf("%s-%d", dev, i)
			b.Locations = append(b.Locations, loc(dev, id, ts))
			b.Logs = append(b.Logs, logEntry(dev, id, ts, "info", fmt.Sprintf("reading %d of %s", i, dev)))
		}
	}
	save(t, st, b)
	return b
}

// purgeAll calls Purge until it reports 0 and returns the total removed.
// Every call but the last must remove something, and it must end.
func purgeAll(t *testing.T, st storage.Store, kind storage.Kind, before int64, limit int) int64 {
	t.Helper()
	var total int64
	for calls := 0; ; calls++ {
		if calls > 1000 {
			t.Fatalf("Purge(%s) still removing after %d calls (%d rows)", kind, calls, total)
		}
		n, err := st.Purge(context.Background(), kind, before, limit)
		if err != nil {
			t.Fatalf("Purge(%s, %d, %d): %v", kind, before, limit, err)
		}
		if n < 0 {
			t.Fatalf("Purge(%s) = %d", kind, n)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// locationsByID and logsByID list every stored record of the devices, by
// "device/id".
func locationsByID(t *testing.T, st storage.Store, devices ...string) []string {
	t.Helper()
	var out []string
	for _, d := range devices {
		for _, l := range allLocations(t, st, storage.LocationQuery{Device: d, Limit: 1000}) {
			out = append(out, l.Device+"/"+l.ID)
		}
	}
	slices.Sort(out)
	return out
}

func logsByID(t *testing.T, st storage.Store, q storage.LogQuery) []string {
	t.Helper()
	q.Limit = 1000
	var out []string
	for _, e := range allLogs(t, st, q) {
		out = append(out, e.Device+"/"+e.ID)
	}
	slices.Sort(out)
	return out
}

// kept returns "device/id" of the fixture's records with ts >= before.
func kept(b storage.Batch, before int64) []string {
	var out []string
	for _, l := range b.Locations {
		if l.TS >= before {
			out = append(out, l.Device+"/"+l.ID)
		}
	}
	slices.Sort(out)
	return out
}

func all(b storage.Batch) []string { return kept(b, -1<<62) }

// Purge removes every record with ts < bound and keeps ts == bound and
// newer; it touches only the kind it is asked for.
func testPurgeExactlyBeforeBound(t *testing.T, st storage.Store) {
	b := retentionFixture(t, st)
	devs := []string{"d1", "d2", "d3"}
	older := int64(len(b.Logs) - len(kept(b, bound)))

	if n := purgeAll(t, st, storage.KindLogs, bound, 1000); n != older {
		t.Errorf("Purge(logs) removed %d, want %d", n, older)
	}
	if diff := cmp.Diff(kept(b, bound), logsByID(t, st, storage.LogQuery{})); diff != "" {
		t.Errorf("logs after purge (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(all(b), locationsByID(t, st, devs...)); diff != "" {
		t.Errorf("purging logs changed locations (-want +got):\n%s", diff)
	}

	if n := purgeAll(t, st, storage.KindLocations, bound, 1000); n != older {
		t.Errorf("Purge(locations) removed %d, want %d", n, older)
	}
	if diff := cmp.Diff(kept(b, bound), locationsByID(t, st, devs...)); diff != "" {
		t.Errorf("locations after purge (-want +got):\n%s", diff)
	}
	// The bound itself survives a second run, and a later bound takes more.
	if n := purgeAll(t, st, storage.KindLocations, bound, 1000); n != 0 {
		t.Errorf("second Purge(locations) removed %d, want 0", n)
	}
	if n := purgeAll(t, st, storage.KindLogs, bound+1, 1000); n != 3 {
		t.Errorf("Purge(logs, bound+1) removed %d, want the 3 logs at the bound", n)
	}
	if diff := cmp.Diff(kept(b, bound+1), logsByID(t, st, storage.LogQuery{})); diff != "" {
		t.Errorf("logs after the later purge (-want +got):\n%s", diff)
	}
}

// A small limit purges in pieces: the caller loops until 0 and ends with
// exactly what one large call removes.
func testPurgeInChunks(t *testing.T, st storage.Store) {
	var b storage.Batch
	for i := range 60 {
		dev := fmt.Sprintf("d%d", i%4)
		id := fmt.Sprintf("c%02d", i)
		ts := bound - int64(60-i)*day/4 // 15 days back to just before the bound
		if i%5 == 0 {
			ts = bound + int64(i) // every fifth is kept
		}
		b.Locations = append(b.Locations, loc(dev, id, ts))
		b.Logs = append(b.Logs, logEntry(dev, id, ts, "warn", "chunked purge"))
	}
	save(t, st, b)
	devs := []string{"d0", "d1", "d2", "d3"}
	want := kept(b, bound)
	older := int64(len(b.Logs) - len(want))
	for _, kind := range []storage.Kind{storage.KindLogs, storage.KindLocations} {
		if n := purgeAll(t, st, kind, bound, 7); n != older {
			t.Errorf("Purge(%s) in chunks of 7 removed %d, want %d", kind, n, older)
		}
	}
	if diff := cmp.Diff(want, logsByID(t, st, storage.LogQuery{})); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, locationsByID(t, st, devs...)); diff != "" {
		t.Errorf("locations (-want +got):\n%s", diff)
	}
}

// Purge of an empty store, or of one holding only newer records, removes
// nothing, whatever the limit.
func testPurgeNothingToDo(t *testing.T, st storage.Store) {
	ctx := context.Background()
	for _, kind := range []storage.Kind{storage.KindLogs, storage.KindLocations} {
		for _, limit := range []int{0, 1, 1000} {
			if n, err := st.Purge(ctx, kind, bound, limit); err != nil || n != 0 {
				t.Errorf("Purge(%s) of an empty store, limit %d = %d, %v; want 0", kind, limit, n, err)
			}
		}
	}
	save(t, st, storage.Batch{
		Locations: []storage.Location{loc("d1", "new", bound)},
		Logs:      []storage.LogEntry{logEntry("d1", "new", bound+1, "info", "new")},
	})
	for _, kind := range []storage.Kind{storage.KindLogs, storage.KindLocations} {
		if n, err := st.Purge(ctx, kind, bound, 10); err != nil || n != 0 {
			t.Errorf("Purge(%s) with only newer records = %d, %v; want 0", kind, n, err)
		}
	}
}

// Search finds what remains after a purge, never what was purged, and
// logs saved afterwards are found as before.
func testPurgeThenSearch(t *testing.T, st storage.Store) {
	save(t, st, storage.Batch{Logs: []storage.LogEntry{
		logEntry("d1", "old1", bound-2*day, "error", "engine overheating ancient"),
		logEntry("d2", "old2", bound-1, "info", "engine started ancient"),
		logEntry("d1", "new1", bound, "warn", "engine overheating again"),
		logEntry("d2", "new2", bound+5, "info", "battery low"),
	}})
	purgeAll(t, st, storage.KindLogs, bound, 1)
	save(t, st, storage.Batch{Logs: []storage.LogEntry{logEntry("d3", "later", bound+10, "info", "engine started later")}})
	tests := []struct {
		text string
		want []string
	}{
		{"engine", []string{"d1/new1", "d3/later"}},
		{"ancient", nil},
		{"overheating", []string{"d1/new1"}},
		{"started", []string{"d3/later"}},
		{"battery", []string{"d2/new2"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, logsByID(t, st, storage.LogQuery{Text: tc.text}), cmpOpts); diff != "" {
			t.Errorf("Text %q after purge (-want +got):\n%s", tc.text, diff)
		}
	}
}

// What a resend of a purged (device, id) does is the store's to say (on
// SQLite it is stored again, a new record): this case asks only what every
// store must do. The resend succeeds and is never stored twice; a resend
// of a record that was kept is still a duplicate.
func testPurgeThenResend(t *testing.T, st storage.Store) {
	old := logEntry("d1", "m-1", bound-day, "info", "first try")
	keep := logEntry("d1", "m-2", bound+1, "info", "kept")
	oldLoc := loc("d1", "m-1", bound-day)
	save(t, st, storage.Batch{Logs: []storage.LogEntry{old, keep}, Locations: []storage.Location{oldLoc}})
	purgeAll(t, st, storage.KindLogs, bound, 100)
	purgeAll(t, st, storage.KindLocations, bound, 100)

	for range 2 {
		res := save(t, st, storage.Batch{Logs: []storage.LogEntry{old}, Locations: []storage.Location{oldLoc}})
		if res.Inserted+res.Duplicates != 2 {
			t.Errorf("resend of purged records: %+v, want 2 records counted", res)
		}
	}
	if got := logsByID(t, st, storage.LogQuery{Device: "d1"}); len(got) > 2 || !slices.Contains(got, "d1/m-2") {
		t.Errorf("logs after resending a purged id twice: %q; want m-2 and at most one m-1", got)
	}
	if got := locationsByID(t, st, "d1"); len(got) > 1 {
		t.Errorf("locations after resending a purged id twice: %q; want at most one", got)
	}
	if res := save(t, st, storage.Batch{Logs: []storage.LogEntry{keep}}); res.Duplicates != 1 {
		t.Errorf("resend of a kept log: %+v, want a duplicate", res)
	}
}

func testPurgeUnknownKind(t *testing.T, st storage.Store) {
	save(t, st, storage.Batch{Logs: []storage.LogEntry{logEntry("d1", "a", bound-day, "info", "x")}})
	if _, err := st.Purge(context.Background(), storage.Kind("devices"), bound, 10); err == nil {
		t.Errorf("Purge(devices): no error")
	}
	if _, err := st.DeleteRecords(context.Background(), storage.Kind(""), "d1", []string{"a"}); err == nil {
		t.Errorf("DeleteRecords(empty kind): no error")
	}
	if got := logsByID(t, st, storage.LogQuery{}); len(got) != 1 {
		t.Errorf("after refused calls: %q, want the log kept", got)
	}
}

// DeleteRecords removes exactly the named ids of that device and kind;
// unknown ids (and devices) are ignored.
func testDeleteRecords(t *testing.T, st storage.Store) {
	ctx := context.Background()
	b := retentionFixture(t, st)
	devs := []string{"d1", "d2", "d3"}
	del := func(kind storage.Kind, device string, ids []string, want int64) {
		t.Helper()
		n, err := st.DeleteRecords(ctx, kind, device, ids)
		if err != nil || n != want {
			t.Errorf("DeleteRecords(%s, %s, %q) = %d, %v; want %d", kind, device, ids, n, err, want)
		}
	}
	del(storage.KindLogs, "d1", []string{"d1-0", "d1-4", "nope", "d2-1"}, 2)
	del(storage.KindLogs, "d1", []string{"d1-0"}, 0) // already gone
	del(storage.KindLogs, "ghost", []string{"d1-1"}, 0)
	del(storage.KindLogs, "d1", nil, 0)
	del(storage.KindLocations, "d2", []string{"d2-6", "d2-2", "d2-2"}, 2)

	remove := func(ids []string, gone ...string) []string {
		return slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return slices.Contains(gone, s) })
	}
	if diff := cmp.Diff(remove(all(b), "d1/d1-0", "d1/d1-4"), logsByID(t, st, storage.LogQuery{})); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(remove(all(b), "d2/d2-6", "d2/d2-2"), locationsByID(t, st, devs...)); diff != "" {
		t.Errorf("locations (-want +got):\n%s", diff)
	}
	// Search no longer finds a deleted log.
	if got := logsByID(t, st, storage.LogQuery{Text: `"reading 4 of d1"`}); len(got) != 0 {
		t.Errorf("search finds deleted log: %q", got)
	}
	if got := logsByID(t, st, storage.LogQuery{Text: `"reading 5 of d1"`}); len(got) != 1 {
		t.Errorf("search for a kept log: %q, want it", got)
	}
}

// A list of ids longer than any one statement takes is removed whole.
func testDeleteRecordsManyIDs(t *testing.T, st storage.Store) {
	var b storage.Batch
	var ids []string
	for i := range 2500 {
		id := fmt.Sprintf("x%04d", i)
		b.Logs = append(b.Logs, logEntry("d1", id, t0+int64(i), "info", "bulk"))
		if i%10 != 0 {
			ids = append(ids, id) // 2,250 of them
		}
	}
	ids = append(ids, "missing-1", "missing-2")
	save(t, st, b)
	n, err := st.DeleteRecords(context.Background(), storage.KindLogs, "d1", ids)
	if err != nil || n != 2250 {
		t.Fatalf("DeleteRecords of 2,252 ids = %d, %v; want 2250", n, err)
	}
	got := logsByID(t, st, storage.LogQuery{})
	if len(got) != 250 {
		t.Fatalf("%d logs left, want 250", len(got))
	}
	for _, id := range got {
		var i int
		if _, err := fmt.Sscanf(id, "d1/x%d", &i); err != nil || i%10 != 0 {
			t.Errorf("left %s, which was to be deleted", id)
		}
	}
}
