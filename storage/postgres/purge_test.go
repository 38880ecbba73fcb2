package postgres

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

// TestPurgeDropsPartitions: days entirely older than the bound go as whole
// partitions, one per call, with their ledger rows; the boundary day's older
// rows go in chunks; then 0.
func TestPurgeDropsPartitions(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, true)
	day0 := dayOf(1_700_000_000_000) * dayMS
	var b storage.Batch
	for d := range int64(3) {
		for i := range int64(5) {
			id := string(rune('a'+d)) + string(rune('0'+i))
			b.Logs = append(b.Logs, storage.LogEntry{Device: "d", ID: id, TS: day0 + d*dayMS + i*3_600_000, Message: id})
		}
	}
	if _, err := st.SaveBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	before := day0 + 2*dayMS + 2*3_600_000 + 1 // day 2, after its third row
	var got []int64
	for range 10 {
		n, err := st.Purge(ctx, storage.KindLogs, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
		if n == 0 {
			break
		}
	}
	if diff := cmp.Diff([]int64{5, 5, 2, 1, 0}, got); diff != "" {
		t.Errorf("Purge counts (-want +got):\n%s", diff)
	}
	for d, want := range []bool{false, false, true} {
		var exists bool
		name := partName("logs", dayOf(day0)+int64(d))
		if err := st.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil || exists != want {
			t.Errorf("partition %s exists = %v, %v; want %v", name, exists, err, want)
		}
	}
	var ledger int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM log_ids`).Scan(&ledger); err != nil || ledger != 2 {
		t.Errorf("ledger rows left: %d, %v; want the 2 kept records'", ledger, err)
	}
	// Purged ids may be stored again; kept ones are still duplicates.
	res, err := st.SaveBatch(ctx, storage.Batch{Logs: []storage.LogEntry{b.Logs[0], b.Logs[14]}})
	if diff := cmp.Diff(storage.SaveResult{Inserted: 1, Duplicates: 1}, res); err != nil || diff != "" {
		t.Errorf("resend after purge: %v (-want +got):\n%s", err, diff)
	}
}
