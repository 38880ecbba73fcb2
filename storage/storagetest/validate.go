package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

// validateCases: every store refuses the same text (storage.ValidateBatch),
// and a refused record costs no other record of its batch.
var validateCases = []testCase{
	{"SaveBatchRefusedText", testSaveBatchRefusedText},
	{"SaveBatchAcceptedText", testSaveBatchAcceptedText},
}

// testSaveBatchRefusedText saves batches of good records and one with a NUL
// byte or invalid UTF-8 where no store keeps it: the batch is refused with
// ErrInvalid and an error naming the record, nothing of it is stored, and
// the good records are stored when saved one by one, as the worker does.
func testSaveBatchRefusedText(t *testing.T, st storage.Store) {
	ctx := context.Background()
	badLoc := func(f func(*storage.Location)) storage.Batch {
		l := loc("d1", "bad", t0+1)
		f(&l)
		return storage.Batch{Locations: []storage.Location{loc("d1", "good", t0), l}}
	}
	badLog := func(f func(*storage.LogEntry)) storage.Batch {
		e := logEntry("d1", "bad", t0+1, "info", "m")
		f(&e)
		return storage.Batch{Logs: []storage.LogEntry{logEntry("d1", "good", t0, "info", "m"), e}}
	}
	tests := []struct {
		name string
		b    storage.Batch
		want string // the end of the error, after the store's own prefix
	}{
		{"NUL in a location's device", badLoc(func(l *storage.Location) { l.Device = "d\x001" }),
			`location 1 (device "d\x001", id "bad"): device holds a NUL byte: invalid record`},
		{"NUL in a location's id", badLoc(func(l *storage.Location) { l.ID = "b\x00ad" }),
			`location 1 (device "d1", id "b\x00ad"): id holds a NUL byte: invalid record`},
		{"invalid UTF-8 in a location's id", badLoc(func(l *storage.Location) { l.ID = "b\xffad" }),
			`location 1 (device "d1", id "b\xffad"): id is not valid UTF-8: invalid record`},
		{"NUL in a crs", badLoc(func(l *storage.Location) { l.CRS = "gcj02\x00" }),
			`location 1 (device "d1", id "bad"): crs holds a NUL byte: invalid record`},
		{"invalid UTF-8 in a log's device", badLog(func(e *storage.LogEntry) { e.Device = "d\xc3" }),
			`log 1 (device "d\xc3", id "bad"): device is not valid UTF-8: invalid record`},
		{"NUL in a log's id", badLog(func(e *storage.LogEntry) { e.ID = "\x00" }),
			`log 1 (device "d1", id "\x00"): id holds a NUL byte: invalid record`},
		{"NUL in a level", badLog(func(e *storage.LogEntry) { e.Level = "info\x00" }),
			`log 1 (device "d1", id "bad"): level holds a NUL byte: invalid record`},
		{"invalid UTF-8 in a level", badLog(func(e *storage.LogEntry) { e.Level = "\xfe" }),
			`log 1 (device "d1", id "bad"): level is not valid UTF-8: invalid record`},
		{"invalid UTF-8 in a message", badLog(func(e *storage.LogEntry) { e.Message = "door \xff" }),
			`log 1 (device "d1", id "bad"): message is not valid UTF-8: invalid record`},
		{"invalid UTF-8 in fields", badLog(func(e *storage.LogEntry) { e.Fields = json.RawMessage("{\"k\":\"\xff\"}") }),
			`log 1 (device "d1", id "bad"): fields are not valid UTF-8: invalid record`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.SaveBatch(ctx, tc.b)
			if !errors.Is(err, storage.ErrInvalid) || !strings.HasSuffix(err.Error(), ": "+tc.want) {
				t.Fatalf("SaveBatch: err = %v\nwant ErrInvalid ending in %s", err, tc.want)
			}
			if n := len(allLocations(t, st, storage.LocationQuery{Device: "d1"})) + len(allLogs(t, st, storage.LogQuery{})); n != 0 {
				t.Fatalf("the refused batch left %d records", n)
			}
			for _, one := range split(tc.b) {
				_, err := st.SaveBatch(ctx, one)
				if bad := isBad(one); bad && !errors.Is(err, storage.ErrInvalid) || !bad && err != nil {
					t.Errorf("SaveBatch(%+v) alone: err = %v", one, err)
				}
			}
			var got []string
			for _, l := range allLocations(t, st, storage.LocationQuery{Device: "d1"}) {
				got = append(got, l.ID)
			}
			got = append(got, logIDs(allLogs(t, st, storage.LogQuery{}))...)
			if diff := cmp.Diff([]string{"good"}, got); diff != "" {
				t.Errorf("stored one by one (-want +got):\n%s", diff)
			}
			// The next case starts from an empty store.
			if _, err := st.DeleteRecords(ctx, kindOf(tc.b), "d1", []string{"good"}); err != nil {
				t.Fatalf("DeleteRecords: %v", err)
			}
		})
	}
}

// split returns one batch per record of b.
func split(b storage.Batch) []storage.Batch {
	var out []storage.Batch
	for _, l := range b.Locations {
		out = append(out, storage.Batch{Locations: []storage.Location{l}})
	}
	for _, e := range b.Logs {
		out = append(out, storage.Batch{Logs: []storage.LogEntry{e}})
	}
	return out
}

// isBad reports whether the one record of b is the bad one of its case.
func isBad(b storage.Batch) bool {
	for _, l := range b.Locations {
		if l.ID != "good" {
			return true
		}
	}
	for _, e := range b.Logs {
		if e.ID != "good" {
			return true
		}
	}
	return false
}

func kindOf(b storage.Batch) storage.Kind {
	if len(b.Logs) > 0 {
		return storage.KindLogs
	}
	return storage.KindLocations
}

// testSaveBatchAcceptedText: what the rules leave alone is stored on every
// store. A NUL in a message is kept, as the NUL itself or as U+FFFD.
func testSaveBatchAcceptedText(t *testing.T, st storage.Store) {
	l := loc("設備-1", "ид-1", t0)
	l.CRS = "gcj02"
	e := logEntry("設備-1", "ид-2", t0, "warn", "door\x00open 開門")
	save(t, st, storage.Batch{Locations: []storage.Location{l}, Logs: []storage.LogEntry{e}})

	if diff := cmp.Diff([]storage.Location{l}, allLocations(t, st, storage.LocationQuery{Device: l.Device}), cmpOpts); diff != "" {
		t.Errorf("locations (-want +got):\n%s", diff)
	}
	logs := allLogs(t, st, storage.LogQuery{Device: e.Device})
	if len(logs) != 1 {
		t.Fatalf("%d logs, want 1", len(logs))
	}
	if m := logs[0].Message; m != e.Message && m != "door\uFFFDopen 開門" {
		t.Errorf("message %q, want %q or its NUL as U+FFFD", m, e.Message)
	}
}
