package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/storage"
)

func openTestStore(t testing.TB) *Store {
	t.Helper()
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "p.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// fillPurge saves n locations and n logs over devices, ts t0+i.
func fillPurge(t testing.TB, st *Store, n, devices int, t0 int64) {
	t.Helper()
	for start := 0; start < n; start += 2000 {
		var b storage.Batch
		for i := start; i < min(n, start+2000); i++ {
			dev, id, ts := fmt.Sprintf("dev%04d", i%devices), fmt.Sprintf("r%d", i), t0+int64(i)
			b.Locations = append(b.Locations, storage.Location{Device: dev, ID: id, TS: ts, ReceivedAt: ts, Lat: 1, Lng: 2})
			b.Logs = append(b.Logs, storage.LogEntry{Device: dev, ID: id, TS: ts, ReceivedAt: ts, Level: "info",
				Message: "sensor reading ok temperature 21.5 battery 87 percent " + id})
		}
		if _, err := st.SaveBatch(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// The chunks are read off indexes: the logs' (ts) index, and for
// locations the (device, ts) index, one device at a time.
func TestSQLitePurgeQueryPlans(t *testing.T) {
	st := openTestStore(t)
	for _, q := range []struct{ sql, want string }{
		{`DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE ts < 1 ORDER BY ts LIMIT 5)`, "COVERING INDEX logs_ts (ts<?)"},
		{`DELETE FROM locations WHERE seq IN (SELECT seq FROM locations WHERE device = 'a' AND ts < 1 ORDER BY ts LIMIT 5)`,
			"COVERING INDEX locations_device_ts (device=? AND ts<?)"},
		{`SELECT device FROM locations WHERE device >= 'a' ORDER BY device LIMIT 1`, "COVERING INDEX locations_device_ts (device>?)"},
		{`SELECT count(*) FROM (SELECT 1 FROM locations WHERE device = 'a' AND ts < 1 LIMIT 5)`, "COVERING INDEX locations_device_ts (device=? AND ts<?)"},
		{`DELETE FROM logs WHERE device = 'a' AND id IN ('x', 'y')`, "INDEX sqlite_autoindex_logs_1 (device=? AND id=?)"},
	} {
		rows, err := st.rdb.Query("EXPLAIN QUERY PLAN " + q.sql)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if !strings.Contains(joined, q.want) || strings.Contains(joined, "SCAN logs") || strings.Contains(joined, "SCAN locations") {
			t.Errorf("plan of %s:\n  %s\nwant %s and no table scan", q.sql, joined, q.want)
		}
	}
}

// Locations are found device by device, resuming where the last chunk
// stopped; a device before that point that gets old rows later is still
// found before Purge reports 0.
func TestSQLitePurgeLocationsWrapsAround(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	fillPurge(t, st, 300, 30, 1000) // 10 locations per device, ts 1000..1299
	n, err := st.Purge(ctx, storage.KindLocations, 2000, 25)
	if err != nil || n != 25 {
		t.Fatalf("first chunk = %d, %v; want 25", n, err)
	}
	if r := st.purgeFrom.get(); r == "" {
		t.Fatalf("no resume point after a partial chunk")
	}
	// dev0000 was emptied by the first chunk; it gets an old row again.
	if _, err := st.SaveBatch(ctx, storage.Batch{Locations: []storage.Location{{Device: "dev0000", ID: "late", TS: 5, Lat: 1, Lng: 1}}}); err != nil {
		t.Fatal(err)
	}
	total := n
	for {
		n, err := st.Purge(ctx, storage.KindLocations, 2000, 25)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 301 {
		t.Errorf("removed %d locations, want 301", total)
	}
	var left int
	if err := st.rdb.QueryRow(`SELECT count(*) FROM locations`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d locations left, %v", left, err)
	}
	if r := st.purgeFrom.get(); r != "" {
		t.Errorf("resume point %q after a complete walk, want none", r)
	}
}

// On SQLite a purged (device, id) is forgotten: a resend is a new record.
func TestSQLitePurgedIDIsStoredAgain(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	b := storage.Batch{
		Locations: []storage.Location{{Device: "d", ID: "x", TS: 10, Lat: 1, Lng: 1}},
		Logs:      []storage.LogEntry{{Device: "d", ID: "x", TS: 10, Message: "again"}},
	}
	if _, err := st.SaveBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, k := range []storage.Kind{storage.KindLogs, storage.KindLocations} {
		if n, err := st.Purge(ctx, k, 11, 10); err != nil || n != 1 {
			t.Fatalf("Purge(%s) = %d, %v", k, n, err)
		}
	}
	res, err := st.SaveBatch(ctx, b)
	if err != nil || res.Inserted != 2 {
		t.Fatalf("resend after purge = %+v, %v; want both stored again", res, err)
	}
	if got, _, err := st.Logs(ctx, storage.LogQuery{Text: "again"}); err != nil || len(got) != 1 {
		t.Fatalf("search after resend: %d, %v; want the log once", len(got), err)
	}
}

// A cancelled purge removes nothing and says the store is unavailable or
// the context ended, never that nothing is left.
func TestSQLitePurgeCancelled(t *testing.T) {
	st := openTestStore(t)
	fillPurge(t, st, 100, 5, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, k := range []storage.Kind{storage.KindLogs, storage.KindLocations} {
		if n, err := st.Purge(ctx, k, 1<<40, 10); err == nil || n != 0 {
			t.Errorf("Purge(%s) on a cancelled context = %d, %v; want an error", k, n, err)
		}
	}
}

// BenchmarkPurge deletes chunks of 2,000 old records from a store of
// 200,000 of each kind; it reports records/s per kind.
func BenchmarkPurge(b *testing.B) {
	for _, kind := range []storage.Kind{storage.KindLogs, storage.KindLocations} {
		b.Run(string(kind), func(b *testing.B) {
			st := openTestStore(b)
			fillPurge(b, st, 200_000, 200, 1)
			ctx := context.Background()
			var removed int64
			b.ResetTimer()
			for b.Loop() {
				n, err := st.Purge(ctx, kind, 1<<40, 2000)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					b.StopTimer()
					fillPurge(b, st, 200_000, 200, 1)
					b.StartTimer()
				}
				removed += n
			}
			b.ReportMetric(float64(removed)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
