package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

func TestMigrateFreshAndAgain(t *testing.T) {
	ctx := context.Background()
	st := openTemp(t, filepath.Join(t.TempDir(), "devtrack.db"))
	cur, known, err := st.SchemaVersion(ctx)
	if err != nil || cur != 0 || known < 4 {
		t.Fatalf("SchemaVersion of a new file = %d, %d, %v; want 0, >= 4", cur, known, err)
	}
	for range 2 {
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		cur, k, err := st.SchemaVersion(ctx)
		if err != nil || cur != known || k != known {
			t.Errorf("after Migrate: SchemaVersion = %d, %d, %v; want %d, %d", cur, k, err, known, known)
		}
	}
	var n int
	if err := st.rdb.QueryRow(`SELECT count(*) FROM ` + versionTable + ` WHERE version_id > 0`).Scan(&n); err != nil || int64(n) != known {
		t.Errorf("%s holds %d versions (%v), want %d", versionTable, n, err, known)
	}
}

// oldRunnerDB builds a database as the hand-written runner left it: the SQL
// of 0001-0003 run as whole files, each in a transaction that records it in
// schema_migrations (the runner's code, kept here as its record).
func oldRunnerDB(t *testing.T, path string) *Store {
	t.Helper()
	ctx := context.Background()
	st := openTemp(t, path)
	for v, name := range []string{"0001_init.sql", "0002_store_health.sql", "0003_token_rotation.sql"} {
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := st.wdb.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
			string(b), // goose's annotations are comments to SQLite
		} {
			if _, err := tx.Exec(q); err != nil {
				t.Fatalf("old runner %s: %v", name, err)
			}
		}
		if _, err := tx.Exec(`INSERT INTO schema_migrations VALUES (?, ?, ?)`, v+1, name, nowMS()); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// An old runner's database with data upgrades in place: its versions are
// adopted, 0004 on is applied, the data stays and is found by the new search
// (substrings, CJK), and new writes are indexed too.
func TestUpgradeOldRunnerInPlace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := oldRunnerDB(t, path)
	// Written as the old SaveBatch did: rows, then the unicode61 index.
	for i, msg := range []string{"upload failed twice", "設備開門失敗", "Ошибка ДАТЧИКА двери", "engine started", "電池 低", "ok"} {
		if _, err := old.wdb.Exec(`INSERT INTO logs (device, id, ts, received_at, level, message) VALUES ('d1', ?, ?, ?, 'info', ?)`,
			fmt.Sprint(i), int64(i+1), int64(i+1), msg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.wdb.Exec(`INSERT INTO logs_fts (rowid, message) SELECT seq, message FROM logs`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.wdb.Exec(`INSERT INTO devices (id, token_hash, created_at) VALUES ('d1', x'01', 1)`); err != nil {
		t.Fatal(err)
	}
	if cur, _, err := old.SchemaVersion(ctx); err != nil || cur != 3 {
		t.Fatalf("old database: version %d, %v; want 3", cur, err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	st := openTemp(t, path)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate the old database: %v", err)
	}
	cur, known, err := st.SchemaVersion(ctx)
	if err != nil || cur != known {
		t.Fatalf("after upgrade: version %d of %d, %v", cur, known, err)
	}
	var versions []int64
	rows, err := st.rdb.Query(`SELECT version_id FROM ` + versionTable + ` ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int64
		_ = rows.Scan(&v)
		versions = append(versions, v)
	}
	rows.Close()
	want := []int64{0}
	for v := int64(1); v <= known; v++ {
		want = append(want, v)
	}
	if diff := cmp.Diff(want, versions); diff != "" {
		t.Errorf("%s versions (-want +got):\n%s", versionTable, diff)
	}
	for _, tbl := range []string{oldVersionTable, adoptedTable} {
		ok, err := tableExists(ctx, st.rdb, tbl)
		if err != nil || ok != (tbl == adoptedTable) {
			t.Errorf("table %s exists = %v (%v)", tbl, ok, err)
		}
	}
	if _, err := st.Device(ctx, "d1"); err != nil {
		t.Errorf("device kept: %v", err)
	}
	save1 := storage.Batch{Logs: []storage.LogEntry{{Device: "d2", ID: "n", TS: 10, ReceivedAt: 10, Message: "new FAILURE after upgrade"}}}
	if _, err := st.SaveBatch(ctx, save1); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]string{
		"fail":   {"n", "0"},
		"開門":     {"1"},
		"датчик": {"2"},
		"engine": {"3"},
		"門":      {"1"},
		// Short terms at the end of a message, and a message shorter
		// than a trigram: found through the padding of 0005.
		"低":   {"4"},
		"池 低": {"4"},
		"ok":  {"5"},
		"k":   {"5"},
	} {
		got, _, err := st.Logs(ctx, storage.LogQuery{Text: q})
		if err != nil {
			t.Fatalf("Logs(%q): %v", q, err)
		}
		var ids []string
		for _, e := range got {
			ids = append(ids, e.ID)
		}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("search %q after upgrade (-want +got):\n%s", q, diff)
		}
	}
	// Retention's deletes keep the new index in step (contentless_delete).
	if _, err := st.wdb.Exec(`DELETE FROM logs WHERE id = '1'`); err != nil {
		t.Fatal(err)
	}
	if got, _, err := st.Logs(ctx, storage.LogQuery{Text: "開門失"}); err != nil || len(got) != 0 {
		t.Errorf("deleted log still found: %v, %v", got, err)
	}
}

// A database migrated by a newer binary is refused by Migrate and
// SchemaVersion with ErrSchemaTooNew, and Migrate changes nothing.
func TestSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	st := openTemp(t, filepath.Join(t.TempDir(), "devtrack.db"))
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, known, _ := st.SchemaVersion(ctx)
	if _, err := st.wdb.Exec(`INSERT INTO `+versionTable+` (version_id, is_applied) VALUES (?, 1)`, known+1); err != nil {
		t.Fatal(err)
	}
	schema := func() string {
		var b strings.Builder
		rows, err := st.rdb.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var a, b2, c string
			_ = rows.Scan(&a, &b2, &c)
			fmt.Fprintln(&b, a, b2, c)
		}
		var n int
		_ = st.rdb.QueryRow(`SELECT count(*) FROM ` + versionTable).Scan(&n)
		fmt.Fprintln(&b, "versions", n)
		return b.String()
	}
	before := schema()
	wantMsg := fmt.Sprintf("database schema version %d is newer than this binary knows (%d); run a newer devtrack", known+1, known)
	err := st.Migrate(ctx)
	if !errors.Is(err, storage.ErrSchemaTooNew) || !strings.HasSuffix(err.Error(), wantMsg) {
		t.Errorf("Migrate: %v\nwant ErrSchemaTooNew ending %q", err, wantMsg)
	}
	cur, k, err := st.SchemaVersion(ctx)
	if !errors.Is(err, storage.ErrSchemaTooNew) || cur != known+1 || k != known {
		t.Errorf("SchemaVersion = %d, %d, %v; want %d, %d, ErrSchemaTooNew", cur, k, err, known+1, known)
	}
	if after := schema(); after != before {
		t.Errorf("a refused Migrate changed the database:\nbefore %s\nafter %s", before, after)
	}
}

// Two Stores migrating one file at the same moment, new or old runner's:
// both succeed, each version is applied once.
func TestMigrateConcurrently(t *testing.T) {
	for _, fromOld := range []bool{false, true} {
		t.Run(fmt.Sprintf("old=%v", fromOld), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "shared.db")
			if fromOld {
				if err := oldRunnerDB(t, path).Close(); err != nil {
					t.Fatal(err)
				}
			}
			const n = 4
			stores := make([]*Store, n)
			for i := range stores {
				stores[i] = openTemp(t, path)
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i, st := range stores {
				wg.Go(func() { errs[i] = st.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("store %d: Migrate: %v", i, err)
				}
			}
			var dup int
			if err := stores[0].rdb.QueryRow(`SELECT count(*) FROM (SELECT version_id FROM ` + versionTable +
				` GROUP BY version_id HAVING count(*) > 1)`).Scan(&dup); err != nil || dup != 0 {
				t.Errorf("%d versions recorded twice (%v)", dup, err)
			}
			cur, known, err := stores[1].SchemaVersion(ctx)
			if err != nil || cur != known {
				t.Errorf("version %d of %d, %v", cur, known, err)
			}
		})
	}
}
