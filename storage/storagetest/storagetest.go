// Package storagetest is the conformance suite of storage.Store: every
// implementation runs it from its own tests through a factory, so all stores
// behave alike. Only tests import it.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/devtrack/devtrack/storage"
)

// t0 is the base of the test timestamps (2023-11-14), Unix ms.
const t0 = int64(1_700_000_000_000)

// Run runs the suite. open must return a new, empty store for each call and
// arrange to close it (t.Cleanup); Run migrates it before use.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	for _, tc := range slices.Concat(baseCases, validateCases, searchCases, idempotencyCases, retentionCases, legacyCases, deviceCRSCases, shareCases, adminCases, alertCases) {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			if err := st.Migrate(context.Background()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			tc.fn(t, st)
		})
	}
}

// testCase is one case of the suite: it gets a new, migrated store.
type testCase struct {
	name string
	fn   func(t *testing.T, st storage.Store)
}

// baseCases are the cases of this file; the other files of the package add
// theirs (validate.go, search.go, idempotency.go, retention.go, legacy.go).
var baseCases = []testCase{
	{"MigrateTwice", testMigrateTwice},
	{"SaveBatchIdempotent", testSaveBatchIdempotent},
	{"SaveBatchInvalid", testSaveBatchInvalid},
	{"CheckWrite", testCheckWrite},
	{"RoundTrip", testRoundTrip},
	{"LocationsPages", testLocationsPages},
	{"LocationsRange", testLocationsRange},
	{"PageLimits", testPageLimits},
	{"LogsFilters", testLogsFilters},
	{"LogsHostileText", testLogsHostileText},
	{"LogsPages", testLogsPages},
	{"BadCursor", testBadCursor},
	{"Devices", testDevices},
	{"RevokeDevice", testRevokeDevice},
	{"Users", testUsers},
	{"RotateDeviceToken", testRotateDeviceToken},
	{"UsersListRevokeDelete", testUsersListRevokeDelete},
}

// cmpOpts compare results across backends: fields JSON by value (a store may
// re-encode it) and nil slices equal to empty ones.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b json.RawMessage) bool {
		if len(a) == 0 || len(b) == 0 {
			return len(a) == len(b)
		}
		var va, vb any
		if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
			return string(a) == string(b)
		}
		return reflect.DeepEqual(va, vb)
	}),
	cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().Type() != reflect.TypeFor[json.RawMessage]()
	}, cmpopts.EquateEmpty()),
}

func ptr(f float64) *float64 { return &f }

func loc(device, id string, ts int64) storage.Location {
	return storage.Location{Device: device, ID: id, TS: ts, ReceivedAt: ts + 100, Lat: 52.52, Lng: 13.405}
}

func logEntry(device, id string, ts int64, level, msg string) storage.LogEntry {
	return storage.LogEntry{Device: device, ID: id, TS: ts, ReceivedAt: ts + 100, Level: level, Message: msg}
}

func save(t *testing.T, st storage.Store, b storage.Batch) storage.SaveResult {
	t.Helper()
	res, err := st.SaveBatch(context.Background(), b)
	if err != nil {
		t.Fatalf("SaveBatch: %v", err)
	}
	return res
}

// allLocations walks every page of q and fails on a repeated cursor.
func allLocations(t *testing.T, st storage.Store, q storage.LocationQuery) []storage.Location {
	t.Helper()
	var out []storage.Location
	seen := map[string]bool{}
	for {
		page, next, err := st.Locations(context.Background(), q)
		if err != nil {
			t.Fatalf("Locations(%+v): %v", q, err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if seen[next] || len(page) == 0 {
			t.Fatalf("Locations: cursor %q repeats or follows an empty page", next)
		}
		seen[next] = true
		q.Cursor = next
	}
}

// allLogs walks every page of q and fails on a repeated cursor.
func allLogs(t *testing.T, st storage.Store, q storage.LogQuery) []storage.LogEntry {
	t.Helper()
	var out []storage.LogEntry
	seen := map[string]bool{}
	for {
		page, next, err := st.Logs(context.Background(), q)
		if err != nil {
			t.Fatalf("Logs(%+v): %v", q, err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if seen[next] || len(page) == 0 {
			t.Fatalf("Logs: cursor %q repeats or follows an empty page", next)
		}
		seen[next] = true
		q.Cursor = next
	}
}

func logIDs(es []storage.LogEntry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

func testMigrateTwice(t *testing.T, st storage.Store) {
	ctx := context.Background()
	save(t, st, storage.Batch{Locations: []storage.Location{loc("d1", "a", t0)}})
	for range 2 {
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	got, _, err := st.Locations(ctx, storage.LocationQuery{Device: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("after re-migrating: %d locations, want the 1 stored", len(got))
	}
}

func testSaveBatchIdempotent(t *testing.T, st storage.Store) {
	b := storage.Batch{
		Locations: []storage.Location{loc("d1", "l1", t0), loc("d1", "l2", t0+1), loc("d2", "l1", t0+2)},
		// The same (device, id) as a location is a different record.
		Logs: []storage.LogEntry{logEntry("d1", "l1", t0, "info", "one"), logEntry("d1", "g2", t0+1, "warn", "two")},
	}
	steps := []struct {
		name string
		b    storage.Batch
		want storage.SaveResult
	}{
		{"first", b, storage.SaveResult{Inserted: 5}},
		{"again", b, storage.SaveResult{Duplicates: 5}},
		{"mixed", storage.Batch{
			Locations: []storage.Location{loc("d1", "l1", t0), loc("d1", "l3", t0+3)},
			Logs:      []storage.LogEntry{logEntry("d1", "g2", t0+1, "warn", "two"), logEntry("d1", "g3", t0+3, "info", "three")},
		}, storage.SaveResult{Inserted: 2, Duplicates: 2}},
		{"repeat inside batch", storage.Batch{
			Locations: []storage.Location{loc("d3", "x", t0), loc("d3", "x", t0)},
		}, storage.SaveResult{Inserted: 1, Duplicates: 1}},
		{"empty", storage.Batch{}, storage.SaveResult{}},
	}
	for _, s := range steps {
		if diff := cmp.Diff(s.want, save(t, st, s.b)); diff != "" {
			t.Errorf("%s: SaveResult (-want +got):\n%s", s.name, diff)
		}
	}

	// A duplicate leaves the stored record unchanged.
	changed := loc("d1", "l1", t0+50)
	save(t, st, storage.Batch{Locations: []storage.Location{changed}})
	locs := allLocations(t, st, storage.LocationQuery{Device: "d1"})
	if len(locs) != 3 {
		t.Fatalf("d1 has %d locations, want 3: %+v", len(locs), locs)
	}
	for _, l := range locs {
		if l.ID == "l1" && l.TS != t0 {
			t.Errorf("duplicate overwrote l1: ts %d, want %d", l.TS, t0)
		}
	}
	logs := allLogs(t, st, storage.LogQuery{})
	if diff := cmp.Diff([]string{"g3", "g2", "l1"}, logIDs(logs)); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
	// Duplicates must not be indexed twice either.
	if got := allLogs(t, st, storage.LogQuery{Text: "two"}); len(got) != 1 {
		t.Errorf("text search for a re-sent log: %d results, want 1", len(got))
	}
}

func testSaveBatchInvalid(t *testing.T, st storage.Store) {
	ctx := context.Background()
	good := loc("d1", "good", t0)
	tests := []struct {
		name string
		b    storage.Batch
	}{
		{"NaN lat", storage.Batch{Locations: []storage.Location{{Device: "d1", ID: "x", TS: t0, Lat: math.NaN()}}}},
		{"+Inf lng", storage.Batch{Locations: []storage.Location{{Device: "d1", ID: "x", TS: t0, Lng: math.Inf(1)}}}},
		{"-Inf lat", storage.Batch{Locations: []storage.Location{{Device: "d1", ID: "x", TS: t0, Lat: math.Inf(-1)}}}},
		{"NaN accuracy", storage.Batch{Locations: []storage.Location{{Device: "d1", ID: "x", TS: t0, Accuracy: ptr(math.NaN())}}}},
		{"location without device", storage.Batch{Locations: []storage.Location{{ID: "x", TS: t0}}}},
		{"location without id", storage.Batch{Locations: []storage.Location{{Device: "d1", TS: t0}}}},
		{"log without device", storage.Batch{Logs: []storage.LogEntry{{ID: "x", TS: t0}}}},
		{"log without id", storage.Batch{Logs: []storage.LogEntry{{Device: "d1", TS: t0}}}},
		{"poison after a good record", storage.Batch{Locations: []storage.Location{good, {Device: "d1", ID: "bad", Lat: math.NaN()}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.SaveBatch(ctx, tc.b)
			if !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("SaveBatch: err = %v, want ErrInvalid", err)
			}
		})
	}
	// Nothing of a refused batch was stored.
	if got := allLocations(t, st, storage.LocationQuery{Device: "d1"}); len(got) != 0 {
		t.Errorf("refused batches left %d locations: %+v", len(got), got)
	}
}

// CheckWrite succeeds on a healthy store, again and again, and leaves the
// archive as it was.
func testCheckWrite(t *testing.T, st storage.Store) {
	ctx := context.Background()
	for range 3 {
		if err := st.CheckWrite(ctx); err != nil {
			t.Fatalf("CheckWrite: %v", err)
		}
	}
	if got := allLocations(t, st, storage.LocationQuery{Device: "d1", Limit: 100}); len(got) != 0 {
		t.Fatalf("CheckWrite left %d locations", len(got))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.CheckWrite(cctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("CheckWrite on a cancelled context: %v; want ErrUnavailable", err)
	}
}

func testRoundTrip(t *testing.T, st storage.Store) {
	full := storage.Location{
		Device: "dev-ü", ID: "full", TS: t0 + 2, ReceivedAt: t0 + 5,
		Lat: -33.8688, Lng: 151.2093, Accuracy: ptr(4.5), Speed: ptr(0), Heading: ptr(359.9),
		Altitude: ptr(-12.25), CRS: "EPSG:3857", OrigLat: ptr(-4011000.5), OrigLng: ptr(16832000.25),
	}
	bare := storage.Location{Device: "dev-ü", ID: "bare", TS: t0 + 1, ReceivedAt: t0 + 3, Lat: 0, Lng: -180}
	logs := []storage.LogEntry{
		{Device: "dev-ü", ID: "html", TS: t0 + 3, ReceivedAt: t0 + 4, Level: "error",
			Message: `<script>alert("x")</script> & <b>bold</b> 'quoted' é 日本`,
			Fields:  json.RawMessage(`{"html":"<i>x</i>","n":1.5,"list":[1,"two",null],"nested":{"ok":true}}`)},
		{Device: "dev-ü", ID: "plain", TS: t0 + 2, ReceivedAt: t0 + 4, Level: "debug", Message: ""},
	}
	save(t, st, storage.Batch{Locations: []storage.Location{bare, full}, Logs: logs})

	gotLocs := allLocations(t, st, storage.LocationQuery{Device: "dev-ü"})
	if diff := cmp.Diff([]storage.Location{full, bare}, gotLocs, cmpOpts); diff != "" {
		t.Errorf("locations (-want +got):\n%s", diff)
	}
	gotLogs := allLogs(t, st, storage.LogQuery{Device: "dev-ü"})
	if diff := cmp.Diff(logs, gotLogs, cmpOpts); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
}

func testLocationsPages(t *testing.T, st storage.Store) {
	// 95 locations of d1 with ties on ts (several records per millisecond),
	// saved out of order across batches, and noise from d2.
	var want []storage.Location
	var b storage.Batch
	for i := range 95 {
		l := loc("d1", fmt.Sprintf("l%03d", i), t0+int64(i/3))
		want = append(want, l)
		b.Locations = append(b.Locations, l, loc("d2", fmt.Sprintf("l%03d", i), t0+int64(i)))
	}
	slices.Reverse(b.Locations)
	save(t, st, storage.Batch{Locations: b.Locations[:77]})
	save(t, st, storage.Batch{Locations: b.Locations[77:]})

	for _, limit := range []int{1, 7, 30, 95, 96, 1000} {
		got := allLocations(t, st, storage.LocationQuery{Device: "d1", Limit: limit})
		checkNewestFirst(t, got, func(l storage.Location) int64 { return l.TS })
		byID := func(a, b storage.Location) int { return cmpString(a.ID, b.ID) }
		got = slices.SortedFunc(slices.Values(got), byID)
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("limit %d: every location once (-want +got):\n%s", limit, diff)
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func checkNewestFirst[T any](t *testing.T, xs []T, ts func(T) int64) {
	t.Helper()
	for i := 1; i < len(xs); i++ {
		if ts(xs[i]) > ts(xs[i-1]) {
			t.Fatalf("record %d (ts %d) is newer than record %d (ts %d)", i, ts(xs[i]), i-1, ts(xs[i-1]))
		}
	}
}

func testLocationsRange(t *testing.T, st storage.Store) {
	var b storage.Batch
	for i := range 10 {
		b.Locations = append(b.Locations, loc("d1", fmt.Sprintf("l%d", i), t0+int64(i)*1000))
	}
	save(t, st, b)
	tests := []struct {
		name     string
		from, to int64
		want     []string
	}{
		{"unbounded", 0, 0, []string{"l9", "l8", "l7", "l6", "l5", "l4", "l3", "l2", "l1", "l0"}},
		{"from inclusive", t0 + 7000, 0, []string{"l9", "l8", "l7"}},
		{"to inclusive", 0, t0 + 2000, []string{"l2", "l1", "l0"}},
		{"both", t0 + 3000, t0 + 5000, []string{"l5", "l4", "l3"}},
		{"between records", t0 + 3001, t0 + 3999, nil},
		{"from after to", t0 + 5000, t0 + 3000, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := allLocations(t, st, storage.LocationQuery{Device: "d1", FromMS: tc.from, ToMS: tc.to, Limit: 2})
			var ids []string
			for _, l := range got {
				ids = append(ids, l.ID)
			}
			if diff := cmp.Diff(tc.want, ids, cmpOpts); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func testPageLimits(t *testing.T, st storage.Store) {
	ctx := context.Background()
	var b storage.Batch
	for i := range 1005 {
		b.Locations = append(b.Locations, loc("d1", fmt.Sprintf("l%04d", i), t0+int64(i)))
		b.Logs = append(b.Logs, logEntry("d1", fmt.Sprintf("g%04d", i), t0+int64(i), "info", "m"))
	}
	save(t, st, b)
	tests := []struct {
		limit, want int
	}{
		{0, 100}, {-1, 100}, {1, 1}, {1000, 1000}, {1001, 1000}, {1 << 30, 1000},
	}
	for _, tc := range tests {
		locs, next, err := st.Locations(ctx, storage.LocationQuery{Device: "d1", Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(locs) != tc.want || next == "" {
			t.Errorf("Locations limit %d: %d records, next %q; want %d and a cursor", tc.limit, len(locs), next, tc.want)
		}
		logs, next, err := st.Logs(ctx, storage.LogQuery{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != tc.want || next == "" {
			t.Errorf("Logs limit %d: %d records, next %q; want %d and a cursor", tc.limit, len(logs), next, tc.want)
		}
	}
	// A page that ends exactly at the last record has no next page.
	_, next, err := st.Logs(ctx, storage.LogQuery{FromMS: t0 + 1000, Limit: 5})
	if err != nil || next != "" {
		t.Errorf("exact last page: next %q, err %v; want no cursor", next, err)
	}
}

// logFixture is a set of logs with distinct timestamps, so that the expected
// order of every filter is fixed.
func logFixture() []storage.LogEntry {
	return []storage.LogEntry{
		logEntry("d1", "a", t0+1, "info", "engine started cleanly"),
		logEntry("d1", "b", t0+2, "warn", "battery low on engine unit"),
		logEntry("d2", "c", t0+3, "error", "Engine failure: overheating"),
		logEntry("d2", "d", t0+4, "info", "please do not DROP TABLE logs here"),
		logEntry("d3", "e", t0+5, "info", `<img src=x onerror="alert(1)"> battery`),
		logEntry("d3", "f", t0+6, "debug", "a OR b* NEAR(x y) message:col"),
		logEntry("d1", "g", t0+7, "error", "GPS fix lost; battery ok"),
	}
}

func testLogsFilters(t *testing.T, st storage.Store) {
	save(t, st, storage.Batch{Logs: logFixture()})
	tests := []struct {
		name string
		q    storage.LogQuery
		want []string
	}{
		{"all", storage.LogQuery{}, []string{"g", "f", "e", "d", "c", "b", "a"}},
		{"device", storage.LogQuery{Device: "d1"}, []string{"g", "b", "a"}},
		{"unknown device", storage.LogQuery{Device: "nope"}, nil},
		{"devices", storage.LogQuery{Devices: []string{"d2", "d3"}}, []string{"f", "e", "d", "c"}},
		{"empty devices", storage.LogQuery{Devices: []string{}}, nil},
		{"device within devices", storage.LogQuery{Device: "d2", Devices: []string{"d2", "d3"}}, []string{"d", "c"}},
		{"device outside devices", storage.LogQuery{Device: "d1", Devices: []string{"d2"}}, nil},
		{"level", storage.LogQuery{Level: "error"}, []string{"g", "c"}},
		{"level and device", storage.LogQuery{Level: "info", Device: "d2"}, []string{"d"}},
		{"from", storage.LogQuery{FromMS: t0 + 5}, []string{"g", "f", "e"}},
		{"to", storage.LogQuery{ToMS: t0 + 2}, []string{"b", "a"}},
		{"from and to", storage.LogQuery{FromMS: t0 + 3, ToMS: t0 + 4}, []string{"d", "c"}},
		{"text word", storage.LogQuery{Text: "battery"}, []string{"g", "e", "b"}},
		{"text any case", storage.LogQuery{Text: "ENGINE"}, []string{"c", "b", "a"}},
		{"text all words", storage.LogQuery{Text: "engine battery"}, []string{"b"}},
		{"text no match", storage.LogQuery{Text: "satellite"}, nil},
		{"text and filters", storage.LogQuery{Text: "battery", Devices: []string{"d1"}, Level: "warn"}, []string{"b"}},
		{"text in markup", storage.LogQuery{Text: "onerror"}, []string{"e"}},
		{"text SQL is words", storage.LogQuery{Text: `'; DROP TABLE logs; --`}, nil},
		{"text SQL is a phrase", storage.LogQuery{Text: `"DROP TABLE logs"`}, []string{"d"}},
		{"text operators are words", storage.LogQuery{Text: "a OR b*"}, []string{"f"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{2, 100} {
				q := tc.q
				q.Limit = limit
				got := logIDs(allLogs(t, st, q))
				if diff := cmp.Diff(tc.want, got, cmpOpts); diff != "" {
					t.Errorf("limit %d: ids (-want +got):\n%s", limit, diff)
				}
			}
		})
	}
}

func testLogsHostileText(t *testing.T, st storage.Store) {
	ctx := context.Background()
	save(t, st, storage.Batch{Logs: logFixture()})
	texts := []string{
		`"; DROP TABLE logs; --`, `' OR 1=1 --`, `a OR b*`, `"unbalanced`, `(`, `)`, `*`, `-`, `--`, `^x`,
		`NEAR(a b)`, `message:engine`, `engine AND`, `NOT engine`, `{message}: x`, `%_\`, `""`, `'`,
		"\x00", `a"b`, `+engine -battery`, `<script>`, "日本 engine", `\"`,
		"engine\x00", "a\x00b", "\"\x00\"", "日本\x00語",
	}
	for _, text := range texts {
		if _, _, err := st.Logs(ctx, storage.LogQuery{Text: text}); err != nil {
			t.Errorf("Logs(Text %q): %v", text, err)
		}
	}
	// Text that is not UTF-8 is refused as asked (storage.SearchTerms).
	if _, _, err := st.Logs(ctx, storage.LogQuery{Text: "\xff\xfeengine"}); !errors.Is(err, storage.ErrBadQuery) {
		t.Errorf("Logs(Text not UTF-8): err = %v, want ErrBadQuery", err)
	}
	if got := allLogs(t, st, storage.LogQuery{}); len(got) != len(logFixture()) {
		t.Errorf("after hostile searches: %d logs, want %d", len(got), len(logFixture()))
	}
}

func testLogsPages(t *testing.T, st storage.Store) {
	var want []string
	var b storage.Batch
	for i := range 60 {
		id := fmt.Sprintf("g%02d", i)
		want = append(want, id)
		// Ties on ts across devices and levels.
		b.Logs = append(b.Logs, logEntry(fmt.Sprintf("d%d", i%3), id, t0+int64(i/4), []string{"info", "warn"}[i%2], "tick tock"))
	}
	save(t, st, b)
	queries := []storage.LogQuery{
		{},
		{Text: "tick"},
		{Devices: []string{"d0", "d1", "d2"}},
		{FromMS: t0, ToMS: t0 + 100},
	}
	for _, q := range queries {
		for _, limit := range []int{1, 4, 7, 59, 60, 61} {
			q.Limit = limit
			got := allLogs(t, st, q)
			checkNewestFirst(t, got, func(e storage.LogEntry) int64 { return e.TS })
			ids := logIDs(got)
			slices.Sort(ids)
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("%+v: every log once (-want +got):\n%s", q, diff)
			}
		}
	}
}

func testBadCursor(t *testing.T, st storage.Store) {
	ctx := context.Background()
	cursors := []string{"!!!", "not a cursor", "MTIzOmFiYw", "eHl6", "MTox:2", "%00", "=="}
	for _, c := range cursors {
		if _, _, err := st.Locations(ctx, storage.LocationQuery{Device: "d1", Cursor: c}); !errors.Is(err, storage.ErrBadCursor) {
			t.Errorf("Locations(Cursor %q): err = %v, want ErrBadCursor", c, err)
		}
		if _, _, err := st.Logs(ctx, storage.LogQuery{Cursor: c}); !errors.Is(err, storage.ErrBadCursor) {
			t.Errorf("Logs(Cursor %q): err = %v, want ErrBadCursor", c, err)
		}
	}
}

func testDevices(t *testing.T, st storage.Store) {
	ctx := context.Background()
	devs := []storage.Device{
		{ID: "d2", Name: "Truck 2", Group: "north", CreatedAt: t0 + 2},
		{ID: "d1", Name: "Truck <1>", Group: "south", CreatedAt: t0 + 1},
		{ID: "d3", Name: "", Group: "north", CreatedAt: t0 + 3},
	}
	for _, d := range devs {
		if err := st.AddDevice(ctx, d, token(d.ID)); err != nil {
			t.Fatalf("AddDevice(%s): %v", d.ID, err)
		}
	}
	if err := st.AddDevice(ctx, storage.Device{ID: "d1", Group: "east"}, token("other")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("AddDevice(duplicate id): err = %v, want ErrExists", err)
	}

	if err := st.AddDevice(ctx, storage.Device{ID: "d4"}, token("d4")); err != nil {
		t.Fatal(err)
	}
	d4, err := st.Device(ctx, "d4")
	if err != nil || d4.CreatedAt == 0 {
		t.Errorf("Device(d4) = %+v, %v; want CreatedAt defaulted to now", d4, err)
	}

	byID := map[string]storage.Device{"d1": devs[1], "d2": devs[0], "d3": devs[2], "d4": d4}
	tests := []struct {
		name   string
		groups []string
		want   []string
	}{
		{"nil is all", nil, []string{"d1", "d2", "d3", "d4"}},
		{"empty is none", []string{}, nil},
		{"one group", []string{"north"}, []string{"d2", "d3"}},
		{"two groups", []string{"south", "north"}, []string{"d1", "d2", "d3"}},
		{"unknown group", []string{"west"}, nil},
	}
	for _, tc := range tests {
		got, err := st.Devices(ctx, tc.groups)
		if err != nil {
			t.Fatalf("Devices(%q): %v", tc.groups, err)
		}
		var want []storage.Device
		for _, id := range tc.want {
			want = append(want, byID[id])
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("%s: Devices(%q) (-want +got):\n%s", tc.name, tc.groups, diff)
		}
	}

	got, err := st.Device(ctx, "d1")
	if diff := cmp.Diff(devs[1], got); err != nil || diff != "" {
		t.Errorf("Device(d1): err %v, (-want +got):\n%s", err, diff)
	}
	if _, err := st.Device(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Device(unknown): err = %v, want ErrNotFound", err)
	}
	got, err = st.DeviceByTokenHash(ctx, token("d2"))
	if diff := cmp.Diff(devs[0], got); err != nil || diff != "" {
		t.Errorf("DeviceByTokenHash(d2): err %v, (-want +got):\n%s", err, diff)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("nope")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeviceByTokenHash(unknown): err = %v, want ErrNotFound", err)
	}
}

// token is a stand-in for the SHA-256 of a device or user token.
func token(s string) []byte {
	h := make([]byte, 32)
	copy(h, "hash:"+s)
	return h
}

func testRevokeDevice(t *testing.T, st storage.Store) {
	ctx := context.Background()
	for _, id := range []string{"d1", "d2"} {
		if err := st.AddDevice(ctx, storage.Device{ID: id, Group: "g", CreatedAt: t0}, token(id)); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().UnixMilli()
	if err := st.RevokeDevice(ctx, "d1"); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	after := time.Now().UnixMilli()
	if err := st.RevokeDevice(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RevokeDevice(unknown): err = %v, want ErrNotFound", err)
	}

	d, err := st.Device(ctx, "d1")
	if err != nil || d.RevokedAt < before || d.RevokedAt > after {
		t.Errorf("Device(d1) = %+v, %v; want RevokedAt in [%d, %d]", d, err, before, after)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("d1")); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("DeviceByTokenHash(revoked): err = %v, want ErrRevoked", err)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("d2")); err != nil {
		t.Errorf("DeviceByTokenHash(active): %v", err)
	}
	if err := st.AddDevice(ctx, storage.Device{ID: "d1"}, token("new")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("AddDevice(id of a revoked device): err = %v, want ErrExists", err)
	}

	tests := []struct {
		since int64
		want  []string
	}{
		{0, []string{"d1"}},
		{before, []string{"d1"}},
		{after + 60_000, nil},
	}
	for _, tc := range tests {
		got, err := st.RevokedSince(ctx, tc.since)
		if err != nil {
			t.Fatalf("RevokedSince(%d): %v", tc.since, err)
		}
		if diff := cmp.Diff(tc.want, got, cmpOpts); diff != "" {
			t.Errorf("RevokedSince(%d) (-want +got):\n%s", tc.since, diff)
		}
	}
}

func testUsers(t *testing.T, st storage.Store) {
	ctx := context.Background()
	alice, err := st.AddUser(ctx, storage.User{Name: "alice", Role: storage.RoleOperator, Groups: []string{"south", "north"}, CreatedAt: t0},
		token("alice"), []byte("$2a$10$hash"))
	if err != nil {
		t.Fatalf("AddUser(alice): %v", err)
	}
	if alice.ID == 0 {
		t.Errorf("AddUser returned no id")
	}
	root, err := st.AddUser(ctx, storage.User{Name: "root", Role: storage.RoleAdmin, CreatedAt: t0}, token("root"), nil)
	if err != nil {
		t.Fatalf("AddUser(root): %v", err)
	}
	if root.ID == alice.ID {
		t.Errorf("two users with id %d", root.ID)
	}
	wantAlice := storage.User{ID: alice.ID, Name: "alice", Role: storage.RoleOperator, Groups: []string{"north", "south"}, CreatedAt: t0}
	sortedGroups := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	if diff := cmp.Diff(wantAlice, alice, sortedGroups); diff != "" {
		t.Errorf("AddUser result (-want +got):\n%s", diff)
	}

	u, pw, err := st.UserByName(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByName: %v", err)
	}
	if diff := cmp.Diff(wantAlice, u, sortedGroups); diff != "" {
		t.Errorf("UserByName (-want +got):\n%s", diff)
	}
	if string(pw) != "$2a$10$hash" {
		t.Errorf("UserByName password hash = %q", pw)
	}
	u, pw, err = st.UserByName(ctx, "root")
	if err != nil || pw != nil || u.Role != storage.RoleAdmin || len(u.Groups) != 0 {
		t.Errorf("UserByName(root) = %+v, %q, %v; want an admin without groups or password", u, pw, err)
	}
	u, err = st.UserByTokenHash(ctx, token("alice"))
	if diff := cmp.Diff(wantAlice, u, sortedGroups); err != nil || diff != "" {
		t.Errorf("UserByTokenHash: err %v (-want +got):\n%s", err, diff)
	}

	if _, _, err := st.UserByName(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UserByName(unknown): err = %v, want ErrNotFound", err)
	}
	if _, err := st.UserByTokenHash(ctx, token("bob")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UserByTokenHash(unknown): err = %v, want ErrNotFound", err)
	}
	if _, err := st.AddUser(ctx, storage.User{Name: "alice", Role: storage.RoleAdmin}, token("alice2"), nil); !errors.Is(err, storage.ErrExists) {
		t.Errorf("AddUser(duplicate name): err = %v, want ErrExists", err)
	}
}

func testRotateDeviceToken(t *testing.T, st storage.Store) {
	ctx := context.Background()
	for _, id := range []string{"d1", "d2", "gone"} {
		if err := st.AddDevice(ctx, storage.Device{ID: id, Group: "g", CreatedAt: t0}, token(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RevokeDevice(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	d, err := st.RotateDeviceToken(ctx, "d1", token("d1-new"))
	if err != nil || d.ID != "d1" || d.TokenRotatedAt < before {
		t.Fatalf("RotateDeviceToken(d1) = %+v, %v; want d1 rotated at or after %d", d, err, before)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("d1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("old token after rotation: err = %v, want ErrNotFound", err)
	}
	got, err := st.DeviceByTokenHash(ctx, token("d1-new"))
	if err != nil || got.ID != "d1" || got.TokenRotatedAt != d.TokenRotatedAt {
		t.Errorf("new token: %+v, %v; want d1 with TokenRotatedAt %d", got, err, d.TokenRotatedAt)
	}
	again, err := st.RotateDeviceToken(ctx, "d1", token("d1-newer"))
	if err != nil || again.TokenRotatedAt <= d.TokenRotatedAt {
		t.Errorf("second rotation: %+v, %v; want TokenRotatedAt after %d", again, err, d.TokenRotatedAt)
	}
	if _, err := st.RotateDeviceToken(ctx, "nope", token("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RotateDeviceToken(unknown): err = %v, want ErrNotFound", err)
	}
	if _, err := st.RotateDeviceToken(ctx, "gone", token("y")); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("RotateDeviceToken(revoked): err = %v, want ErrRevoked", err)
	}
	if _, err := st.RotateDeviceToken(ctx, "d1", token("d2")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("RotateDeviceToken(another device's token): err = %v, want ErrExists", err)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("d2")); err != nil {
		t.Errorf("d2 after a refused rotation onto its token: %v", err)
	}
	rotated, err := st.DevicesRotatedSince(ctx, before)
	if err != nil || len(rotated) != 1 || rotated[0].ID != "d1" || rotated[0].TokenRotatedAt != again.TokenRotatedAt {
		t.Errorf("DevicesRotatedSince(%d) = %+v, %v; want d1 alone", before, rotated, err)
	}
	if rotated, err := st.DevicesRotatedSince(ctx, again.TokenRotatedAt+60_000); err != nil || len(rotated) != 0 {
		t.Errorf("DevicesRotatedSince(later) = %+v, %v; want none", rotated, err)
	}
}

func testUsersListRevokeDelete(t *testing.T, st storage.Store) {
	ctx := context.Background()
	if us, err := st.Users(ctx); err != nil || len(us) != 0 {
		t.Fatalf("Users() of an empty store = %+v, %v", us, err)
	}
	bob, err := st.AddUser(ctx, storage.User{Name: "bob", Role: storage.RoleOperator, Groups: []string{"b", "a"}, CreatedAt: t0}, token("bob"), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	amy, err := st.AddUser(ctx, storage.User{Name: "amy", Role: storage.RoleAdmin, CreatedAt: t0}, token("amy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	us, err := st.Users(ctx)
	want := []storage.User{
		{ID: amy.ID, Name: "amy", Role: storage.RoleAdmin, Groups: []string{}, CreatedAt: t0},
		{ID: bob.ID, Name: "bob", Role: storage.RoleOperator, Groups: []string{"a", "b"}, CreatedAt: t0},
	}
	if diff := cmp.Diff(want, us, cmpOpts); err != nil || diff != "" {
		t.Errorf("Users(): err %v (-want +got):\n%s", err, diff)
	}

	before := time.Now().UnixMilli()
	u, err := st.RevokeUser(ctx, "bob", token("bob-new"))
	if err != nil || u.ID != bob.ID || u.RevokedAt < before {
		t.Fatalf("RevokeUser(bob) = %+v, %v; want bob revoked at or after %d", u, err, before)
	}
	if _, err := st.UserByTokenHash(ctx, token("bob")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("old token after revoke: err = %v, want ErrNotFound", err)
	}
	if got, err := st.UserByTokenHash(ctx, token("bob-new")); err != nil || got.Name != "bob" || got.RevokedAt != u.RevokedAt {
		t.Errorf("new token: %+v, %v", got, err)
	}
	if _, pw, err := st.UserByName(ctx, "bob"); err != nil || string(pw) != "pw" {
		t.Errorf("password after revoke: %q, %v; want it kept", pw, err)
	}
	again, err := st.RevokeUser(ctx, "bob", token("bob-newer"))
	if err != nil || again.RevokedAt <= u.RevokedAt {
		t.Errorf("second revoke: %+v, %v; want RevokedAt after %d", again, err, u.RevokedAt)
	}
	if _, err := st.RevokeUser(ctx, "nobody", token("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RevokeUser(unknown): err = %v, want ErrNotFound", err)
	}

	if err := st.DeleteUser(ctx, "bob"); err != nil {
		t.Fatalf("DeleteUser(bob): %v", err)
	}
	if err := st.DeleteUser(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteUser twice: err = %v, want ErrNotFound", err)
	}
	if _, err := st.UserByTokenHash(ctx, token("bob-newer")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("token of a deleted user: err = %v, want ErrNotFound", err)
	}
	if _, _, err := st.UserByName(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UserByName(deleted): err = %v, want ErrNotFound", err)
	}
	if us, err := st.Users(ctx); err != nil || len(us) != 1 || us[0].Name != "amy" {
		t.Errorf("Users() after delete = %+v, %v; want amy alone", us, err)
	}
	// The name is free again, with no group left over from before.
	if _, err := st.AddUser(ctx, storage.User{Name: "bob", Role: storage.RoleOperator, CreatedAt: t0}, token("bob-2"), nil); err != nil {
		t.Fatalf("AddUser(bob) after delete: %v", err)
	}
	if u, _, err := st.UserByName(ctx, "bob"); err != nil || len(u.Groups) != 0 || u.RevokedAt != 0 {
		t.Errorf("re-added bob = %+v, %v; want no groups, never revoked", u, err)
	}
}
