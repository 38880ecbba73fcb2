package postgres

import (
	"slices"
	"testing"

	"github.com/devtrack/devtrack/storage"
)

// insertOrder keeps the first record of each (device, id) and orders them
// by device, then ts, then position in the batch.
func TestInsertOrderKeepsFirstsByDeviceThenTS(t *testing.T) {
	ls := []storage.Location{
		{Device: "b", ID: "1", TS: 30}, // 0
		{Device: "a", ID: "1", TS: 20}, // 1
		{Device: "b", ID: "2", TS: 10}, // 2
		{Device: "a", ID: "1", TS: 5},  // 3: a resend of 1, dropped
		{Device: "a", ID: "2", TS: 20}, // 4: same ts as 1, after it
		{Device: "b", ID: "1", TS: 1},  // 5: a resend of 0, dropped
		{Device: "a", ID: "3", TS: 15}, // 6
	}
	got := insertOrder(ls, func(l *storage.Location) (string, string, int64) { return l.Device, l.ID, l.TS })
	if want := []int{6, 1, 4, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("insertOrder = %v; want %v", got, want)
	}
	args := locationArgs(ls)
	if ids := args[1].([]string); !slices.Equal(ids, []string{"3", "1", "2", "2", "1"}) {
		t.Errorf("locationArgs ids = %v", ids)
	}
	if ts := args[2].([]int64); !slices.Equal(ts, []int64{15, 20, 20, 10, 30}) {
		t.Errorf("locationArgs ts = %v", ts)
	}
}
