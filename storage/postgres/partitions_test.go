package postgres

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

func TestPartitionBounds(t *testing.T) {
	tests := []struct {
		ts     int64
		name   string
		bounds string
	}{
		{1_700_000_000_000, "logs_p20231114", "FROM (1699920000000) TO (1700006400000)"},
		{0, "logs_p19700101", "FROM (0) TO (86400000)"},
		{-1, "logs_p19691231", "FROM (-86400000) TO (0)"},
		{math.MaxInt64, "logs_d106751991167", "FROM (9223372036828800000) TO (MAXVALUE)"},
		{math.MinInt64, "logs_dm106751991168", "FROM (MINVALUE) TO (-9223372036828800000)"},
	}
	for _, tc := range tests {
		day := dayOf(tc.ts)
		got := struct{ name, bounds string }{partName("logs", day), partBounds(day)}
		want := struct{ name, bounds string }{tc.name, tc.bounds}
		if got != want {
			t.Errorf("ts %d: %+v, want %+v", tc.ts, got, want)
		}
	}
}

// TestPartitionOnDemand stores records whose ts are far from now (years
// away, the ends of int64): each gets a partition, and reads find them.
func TestPartitionOnDemand(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, true)
	now := time.Now().UnixMilli()
	tss := []int64{now + 5*365*86_400_000, now - 20*365*86_400_000, 0, -1, math.MaxInt64, math.MinInt64 + 1}
	var b storage.Batch
	for i, ts := range tss {
		id := string(rune('a' + i))
		b.Locations = append(b.Locations, storage.Location{Device: "d1", ID: id, TS: ts, Lat: 1, Lng: 2})
		b.Logs = append(b.Logs, storage.LogEntry{Device: "d1", ID: id, TS: ts, Level: "info", Message: "far " + id})
	}
	res, err := st.SaveBatch(ctx, b)
	if err != nil || res.Inserted != b.Len() {
		t.Fatalf("SaveBatch = %+v, %v; want %d inserted", res, err, b.Len())
	}
	for _, ts := range tss {
		for _, table := range partitioned {
			var n int
			name := partName(table, dayOf(ts))
			if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM `+name).Scan(&n); err != nil || n != 1 {
				t.Errorf("partition %s: %d rows, %v; want 1", name, n, err)
			}
		}
	}
	locs, _, err := st.Locations(ctx, storage.LocationQuery{Device: "d1"})
	if err != nil || len(locs) != len(tss) || locs[0].TS != math.MaxInt64 || locs[len(locs)-1].TS != math.MinInt64+1 {
		t.Errorf("Locations = %d, %v; want all %d, newest first", len(locs), err, len(tss))
	}
	logs, _, err := st.Logs(ctx, storage.LogQuery{Text: "far"})
	if err != nil || len(logs) != len(tss) {
		t.Errorf("Logs(far) = %d, %v; want %d", len(logs), err, len(tss))
	}
	// Sent again, they are duplicates wherever their partitions are.
	if res, err := st.SaveBatch(ctx, b); err != nil || res.Duplicates != b.Len() {
		t.Errorf("SaveBatch again = %+v, %v; want all duplicates", res, err)
	}
}

// TestPartitionConcurrentCreators: Stores of several processes making the
// same new days at once (each its own pool, nothing known) all succeed.
func TestPartitionConcurrentCreators(t *testing.T) {
	ctx := context.Background()
	first := newStore(t, true)
	dsn := first.pool.Config().ConnString()
	base := time.Now().UnixMilli() + 100*86_400_000
	const writers = 4
	results := make([]storage.SaveResult, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		st := openStore(t, dsn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b storage.Batch
			for d := range 10 {
				// The same (device, id) from every writer: one wins each.
				b.Logs = append(b.Logs, storage.LogEntry{Device: "d", ID: string(rune('a' + d)), TS: base + int64(d)*86_400_000, Message: "x"})
			}
			results[w], errs[w] = st.SaveBatch(ctx, b)
		}()
	}
	wg.Wait()
	inserted := 0
	for w := range writers {
		if errs[w] != nil {
			t.Errorf("writer %d: %v", w, errs[w])
		}
		inserted += results[w].Inserted
	}
	if inserted != 10 {
		t.Errorf("%d records inserted in all, want each of 10 once", inserted)
	}
	logs, _, err := first.Logs(ctx, storage.LogQuery{Device: "d"})
	if err != nil || len(logs) != 10 {
		t.Errorf("Logs = %d, %v; want 10", len(logs), err)
	}
}

// TestPartitionDroppedElsewhere: a partition that this Store knows but
// another process dropped (a purge) is made again on the next batch.
func TestPartitionDroppedElsewhere(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, true)
	ts := int64(1_600_000_000_000)
	if _, err := st.SaveBatch(ctx, storage.Batch{Logs: []storage.LogEntry{{Device: "d", ID: "a", TS: ts}}}); err != nil {
		t.Fatal(err)
	}
	other := openStore(t, st.pool.Config().ConnString())
	if n, err := other.Purge(ctx, storage.KindLogs, ts+86_400_000, 100); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	res, err := st.SaveBatch(ctx, storage.Batch{Logs: []storage.LogEntry{{Device: "d", ID: "b", TS: ts}}})
	if diff := cmp.Diff(storage.SaveResult{Inserted: 1}, res); err != nil || diff != "" {
		t.Errorf("SaveBatch into the dropped day: %v (-want +got):\n%s", err, diff)
	}
}
