package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/storagetest"
)

func openTemp(t testing.TB, path string) *Store {
	t.Helper()
	st, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "devtrack.db"))
	})
}

// TestConcurrentProcesses runs two Stores on one file, as two workers would
// be: they migrate at the same moment and then write overlapping batches
// while a reader pages through the logs. No write may fail with SQLITE_BUSY,
// and every record must be stored once.
func TestConcurrentProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := make([]*Store, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range stores {
		wg.Go(func() {
			st, err := Open(ctx, path, nil)
			if err != nil {
				errs <- err
				return
			}
			stores[i] = st
			if err := st.Migrate(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for _, st := range stores {
		if st != nil {
			t.Cleanup(func() { _ = st.Close() })
		}
	}
	for err := range errs {
		t.Fatalf("concurrent Open and Migrate: %v", err)
	}

	const (
		batches   = 40
		batchSize = 100
	)
	// Both stores write the same ids: each record is inserted by one and
	// counted as a duplicate by the other.
	results := make([]storage.SaveResult, len(stores))
	errs = make(chan error, 64)
	for i, st := range stores {
		wg.Go(func() {
			for n := range batches {
				// A writer can wait past busy_timeout for a lock that the
				// other keeps taking back (SQLite's lock is not fair, and
				// this machine may be loaded): that is ErrUnavailable, and
				// like the worker the test writes the same batch again.
				res, err := st.SaveBatch(ctx, benchBatch(batchSize, n*batchSize))
				for try := 0; errors.Is(err, storage.ErrUnavailable) && try < 5; try++ {
					res, err = st.SaveBatch(ctx, benchBatch(batchSize, n*batchSize))
				}
				if err != nil {
					errs <- fmt.Errorf("store %d batch %d: %w", i, n, err)
					return
				}
				results[i].Inserted += res.Inserted
				results[i].Duplicates += res.Duplicates
			}
		})
	}
	wg.Go(func() {
		for range batches {
			if _, _, err := stores[0].Logs(ctx, storage.LogQuery{Text: "battery", Limit: 50}); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	total := batches * batchSize
	got := storage.SaveResult{
		Inserted:   results[0].Inserted + results[1].Inserted,
		Duplicates: results[0].Duplicates + results[1].Duplicates,
	}
	if diff := cmp.Diff(storage.SaveResult{Inserted: total, Duplicates: total}, got); diff != "" {
		t.Errorf("SaveResult sums (-want +got):\n%s", diff)
	}
	var locs, logs, indexed int
	for _, q := range []struct {
		sql string
		n   *int
	}{
		{`SELECT count(*) FROM locations`, &locs},
		{`SELECT count(*) FROM logs`, &logs},
		{`SELECT count(*) FROM logs_fts WHERE logs_fts MATCH 'battery'`, &indexed},
	} {
		if err := stores[1].rdb.QueryRow(q.sql).Scan(q.n); err != nil {
			t.Fatal(err)
		}
	}
	if locs+logs != total || indexed != logs {
		t.Errorf("stored %d locations + %d logs (%d indexed), want %d records, all logs indexed", locs, logs, indexed, total)
	}
}

// TestOpenOddPath checks that the path is passed to SQLite as a file, not
// parsed: '?', '#', '%' and spaces are part of the name.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir%20")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "db?x=1#frag.db")
	st := openTemp(t, path)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestSaveBatchInvalidNamesRecord(t *testing.T) {
	st := openTemp(t, filepath.Join(t.TempDir(), "devtrack.db"))
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := storage.Batch{Logs: []storage.LogEntry{
		{Device: "d1", ID: "ok", Message: "fine"},
		{Device: "d1", ID: "poison", Fields: []byte(`{"unterminated`)},
	}}
	_, err := st.SaveBatch(context.Background(), b)
	const want = `sqlite: save batch: log 1 (device "d1", id "poison"): fields are not valid JSON: invalid record`
	if !errors.Is(err, storage.ErrInvalid) || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
