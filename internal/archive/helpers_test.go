package archive

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/postgres"
	"github.com/devtrack/devtrack/storage/sqlite"
)

// stores are the stores every test runs against: each returns a new,
// migrated, empty store closed at the end of the test.
var stores = []struct {
	name string
	open func(t testing.TB) storage.Store
}{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

// TestMain stops the package's PostgreSQL server (pgtest.Shared) at the end.
func TestMain(m *testing.M) { pgtest.Main(m) }

// openPostgres opens a store on a new database of the package's shared
// server (skipped where PostgreSQL is not installed, see pgtest).
func openPostgres(t testing.TB) storage.Store {
	t.Helper()
	srv := pgtest.Shared(t)
	st, err := postgres.Open(context.Background(), srv.NewDB(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func openSQLite(t testing.TB) storage.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "devtrack.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// eachStore runs fn as a subtest per store, with a new source store.
func eachStore(t *testing.T, fn func(t *testing.T, open func(t testing.TB) storage.Store)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { fn(t, s.open) })
	}
}

// needDelete skips a test of --delete while the store lacks DeleteRecords.
func needDelete(t *testing.T, st storage.Store) {
	t.Helper()
	if _, err := st.DeleteRecords(context.Background(), storage.KindLogs, "no-such-device", []string{"x"}); err != nil {
		if strings.Contains(err.Error(), "not implemented") {
			t.Skipf("--delete needs Store.DeleteRecords, not implemented for this store yet: %v", err)
		}
		t.Fatalf("DeleteRecords: %v", err)
	}
}

// before is the export bound of the tests: 2026-11-30T00:00:00Z.
var before = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixMilli()

const day = int64(24 * time.Hour / time.Millisecond)

// testDevices hold ids that need encoding, and a revoked device.
var testDevices = []string{"d1", "truck/7 ü", ".hidden", "rev"}

// fill registers testDevices and stores per device about n locations and
// n logs from 3.5 days before `before` to a day after it, every ts
// unique across the store (so that every store orders them alike), with
// records at before-1 (exported) and at before (kept).
func fill(t *testing.T, st storage.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for _, id := range testDevices {
		tok := make([]byte, 32)
		_, _ = rand.Read(tok)
		if err := st.AddDevice(ctx, storage.Device{ID: id, Name: "n " + id, Group: "g", CreatedAt: before - 10*day}, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RevokeDevice(ctx, "rev"); err != nil {
		t.Fatal(err)
	}
	messages := []string{"door 2 opened", "設備開門失敗", "engine failed to start", "Привет мир", "<b>&amp;</b> \"quoted\" \\ back"}
	levels := []string{"info", "warn", "error", "debug"}
	start := before - 3*day - day/2
	step := (4*day + day/2) / int64(n)
	for di, dev := range testDevices {
		var b storage.Batch
		for i := 0; i < n; i++ {
			ts := start + int64(i)*step + int64(di)*2
			if i == n-2 {
				ts = before - 1 - int64(di)*2
			}
			if i == n-1 {
				ts = before + int64(di)*2
			}
			acc := float64(i%50) / 3
			l := storage.Location{Device: dev, ID: fmt.Sprintf("l-%d", i), TS: ts, ReceivedAt: ts + 5, Lat: 31.2 + float64(i)/1e4, Lng: 121.4 - float64(i)/1e4}
			if i%3 != 0 {
				l.Accuracy = &acc
				l.CRS = "gcj02"
				l.OrigLat, l.OrigLng = &l.Lat, &l.Lng
			}
			b.Locations = append(b.Locations, l)
			e := storage.LogEntry{Device: dev, ID: fmt.Sprintf("g-%d", i), TS: ts + 1, ReceivedAt: ts + 7,
				Level: levels[i%len(levels)], Message: fmt.Sprintf("%s #%d", messages[i%len(messages)], i)}
			if i%2 == 0 {
				e.Fields = json.RawMessage(fmt.Sprintf(`{"door":%d,"nested":{"a":[1,"x"]}}`, i))
			}
			b.Logs = append(b.Logs, e)
		}
		if _, err := st.SaveBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
}

// answers collects what the query API would answer about the range
// [from, to] on st: every page of every device's locations and logs,
// and log searches by level and text, in small pages.
func answers(t *testing.T, st storage.Store, from, to int64) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, dev := range testDevices {
		var locs [][]storage.Location
		q := storage.LocationQuery{Device: dev, FromMS: from, ToMS: to, Limit: 50}
		for {
			items, next, err := st.Locations(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			locs = append(locs, items)
			if next == "" {
				break
			}
			q.Cursor = next
		}
		out["locations "+dev] = locs
		out["logs "+dev] = logPages(t, st, storage.LogQuery{Device: dev, FromMS: from, ToMS: to, Limit: 40})
	}
	for _, lq := range []storage.LogQuery{
		{Level: "warn"},
		{Text: "開門"},
		{Text: "fail"},
		{Text: `"door 2"`},
		{Text: "привет", Devices: []string{"d1", "rev"}},
		{Text: "<b>"},
	} {
		lq.FromMS, lq.ToMS, lq.Limit = from, to, 30
		out[fmt.Sprintf("logs %+v", lq)] = logPages(t, st, lq)
	}
	return out
}

func logPages(t *testing.T, st storage.Store, q storage.LogQuery) [][]storage.LogEntry {
	t.Helper()
	var pages [][]storage.LogEntry
	for {
		items, next, err := st.Logs(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, items)
		if next == "" {
			return pages
		}
		q.Cursor = next
	}
}

// count is how many records of st have ts in [from, to].
func count(t *testing.T, st storage.Store, from, to int64) int {
	t.Helper()
	n := 0
	for k, v := range answers(t, st, from, to) {
		if !strings.HasPrefix(k, "locations ") && !strings.HasPrefix(k, "logs ") || strings.Contains(k, "{") {
			continue
		}
		switch pages := v.(type) {
		case [][]storage.Location:
			for _, p := range pages {
				n += len(p)
			}
		case [][]storage.LogEntry:
			for _, p := range pages {
				n += len(p)
			}
		}
	}
	return n
}

// rawJSON compares json.RawMessage by value: the archive keeps fields as
// the API gives them (compact), not byte for byte.
var rawJSON = cmp.Transformer("json", func(r json.RawMessage) any {
	if r == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(r, &v); err != nil {
		return string(r)
	}
	return v
})

func mustExport(t *testing.T, st storage.Store, cfg ExportConfig) ExportResult {
	t.Helper()
	res, err := Export(context.Background(), st, cfg, nil)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return res
}

func mustImport(t *testing.T, st storage.Store, dir string) ImportResult {
	t.Helper()
	res, err := Import(context.Background(), st, dir, nil)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return res
}

func mustManifest(t *testing.T, dir string) *Manifest {
	t.Helper()
	m, err := readManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fileSet is the comparable part of a manifest's file list.
func fileSet(m *Manifest) []string {
	var out []string
	for _, f := range m.Files {
		out = append(out, fmt.Sprintf("%s %s %q %s %d %d %s", f.Path, f.Kind, f.Device, f.Day, f.Records, f.Bytes, f.SHA256))
	}
	return out
}
