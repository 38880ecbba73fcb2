package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
)

// TestConcurrentMigrate migrates a new database from several Stores at once
// (as several processes would, each with its own pool): all succeed, once.
func TestConcurrentMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Shared(t).NewDB(t)
	stores := make([]*Store, 3)
	for i := range stores {
		stores[i] = openStore(t, dsn)
	}
	if cur, known, err := stores[0].SchemaVersion(ctx); err != nil || cur != 0 || known < 1 {
		t.Fatalf("SchemaVersion of an empty database = %d, %d, %v; want 0 and the known version", cur, known, err)
	}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	cur, known, err := stores[1].SchemaVersion(ctx)
	if err != nil || cur != known {
		t.Errorf("SchemaVersion after = %d, %d, %v; want current = known", cur, known, err)
	}
	var applied int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil || applied != int(known) {
		t.Errorf("goose rows: %d, %v; want each of %d versions once", applied, err, known)
	}
	for _, st := range stores {
		if _, err := st.SaveBatch(ctx, oneLog("x")); err != nil {
			t.Errorf("SaveBatch after concurrent Migrate: %v", err)
		}
	}
}

// TestSchemaTooNew: a database migrated by a newer release is refused with
// a clear message, and nothing is changed.
func TestSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, true)
	_, known, err := st.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, known+5); err != nil {
		t.Fatal(err)
	}
	// A newer release might drop a table this one would create again.
	if _, err := st.pool.Exec(ctx, `DROP TABLE store_health`); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		var s string
		err := st.pool.QueryRow(ctx, `SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
			WHERE relnamespace = 'public'::regnamespace`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	st.forgetPartitions("logs") // so that a Migrate that went on would make partitions
	err = st.Migrate(ctx)
	if !errors.Is(err, storage.ErrSchemaTooNew) {
		t.Fatalf("Migrate: %v, want ErrSchemaTooNew", err)
	}
	want := "database schema version 6 is newer than this binary knows (1); run a newer devtrack"
	if known != 1 {
		want = "is newer than this binary knows"
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Migrate error %q does not say %q", err, want)
	}
	if after := snapshot(); after != before {
		t.Errorf("Migrate changed the database:\nbefore %s\nafter  %s", before, after)
	}
	cur, k, err := st.SchemaVersion(ctx)
	if !errors.Is(err, storage.ErrSchemaTooNew) || cur != known+5 || k != known {
		t.Errorf("SchemaVersion = %d, %d, %v; want %d, %d, ErrSchemaTooNew", cur, k, err, known+5, known)
	}
}
