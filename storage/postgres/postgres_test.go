package postgres

import (
	"context"
	"testing"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/storagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// migratedTemplate is a database with the schema applied, copied by
// newStore: a copy is faster than migrating each test's database.
const migratedTemplate = "devtrack_migrated"

// newStore opens a store on a new database of the package's shared server.
// migrated copies the migrated template instead of an empty database.
func newStore(t testing.TB, migrated bool) *Store {
	t.Helper()
	srv := pgtest.Shared(t)
	if !migrated {
		return openStore(t, srv.NewDB(t))
	}
	{
		srv.Template(t, migratedTemplate, func(dsn string) error {
			st, err := Open(context.Background(), dsn, nil)
			if err != nil {
				return err
			}
			defer st.Close()
			return st.Migrate(context.Background())
		})
	}
	return openStore(t, srv.NewDBFrom(t, migratedTemplate))
}

func openStore(t testing.TB, dsn string) *Store {
	t.Helper()
	st, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestPostgres(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t, true) })
}

// TestPostgresSearchPaths runs the suite with a probe of one row and no
// walk, so that every search takes the index paths of step 2 (trigram,
// bigram, or a walk for short ASCII terms) on the suite's small data.
func TestPostgresSearchPaths(t *testing.T) {
	probe, walk := searchProbeRows, searchWalkRows
	searchProbeRows, searchWalkRows = 1, 0
	t.Cleanup(func() { searchProbeRows, searchWalkRows = probe, walk })
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t, true) })
}
