package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
)

func TestParseDSN(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dsn     string
		want    dsn
		wantErr string // substring of the error; "" for none
	}{
		{dsn: "sqlite:///var/lib/devtrack/dt.db", want: dsn{kind: kindSQLite, path: "/var/lib/devtrack/dt.db"}},
		{dsn: "sqlite:///tmp/a/../b.db", want: dsn{kind: kindSQLite, path: "/tmp/b.db"}},
		{dsn: "sqlite://data/dt.db", want: dsn{kind: kindSQLite, path: filepath.Join(wd, "data/dt.db")}},
		{dsn: "sqlite://dt.db", want: dsn{kind: kindSQLite, path: filepath.Join(wd, "dt.db")}},
		{dsn: "SQLite3://dt.db", want: dsn{kind: kindSQLite, path: filepath.Join(wd, "dt.db")}},
		{dsn: "postgres://user:secret@localhost/devtrack", want: dsn{kind: kindPostgres, url: "postgres://user:secret@localhost/devtrack"}},
		{dsn: "postgresql://localhost/devtrack?sslmode=disable", want: dsn{kind: kindPostgres, url: "postgresql://localhost/devtrack?sslmode=disable"}},
		{dsn: "postgres://localhost/devtrack?sslmode=bogus", wantErr: "sslmode"},

		{dsn: "", wantErr: `bad DSN "": want scheme://`},
		{dsn: "/var/lib/dt.db", wantErr: `bad DSN "/var/lib/dt.db": want scheme://`},
		{dsn: "sqlite:/var/lib/dt.db", wantErr: "want scheme://"},
		{dsn: "://x", wantErr: "want scheme://"},
		{dsn: "sqlite://", wantErr: "no file path"},
		{dsn: "sqlite:///", wantErr: "no file path"},
		{dsn: "sqlite:///var/lib/", wantErr: "path is a directory"},
		{dsn: "sqlite:///dt.db?cache=shared", wantErr: "query and fragment are not supported"},
		{dsn: "mysql://localhost/dt", wantErr: `unknown scheme "mysql"`},
		{dsn: "postgres://", wantErr: "postgres:// without host"},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			got, err := parseDSN(tc.dsn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseDSN(%q) error = %v, want one containing %q", tc.dsn, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseDSN(%q): %v", tc.dsn, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(dsn{})); diff != "" {
				t.Errorf("parseDSN(%q) (-want +got):\n%s", tc.dsn, diff)
			}
		})
	}
}

func TestPostgresErrorsHidePassword(t *testing.T) {
	ctx := context.Background()
	// Port 1 on loopback refuses at once: a store that is down.
	_, err := Open(ctx, "postgres://u:hunter2@127.0.0.1:1/devtrack?connect_timeout=5", nil)
	if err == nil || errors.Is(err, ErrBadDSN) || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open(unreachable) err = %v, want ErrUnavailable and not ErrBadDSN", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	_, err = Open(ctx, "postgres://u:hunter2@db/devtrack?sslmode=bogus", nil)
	if !errors.Is(err, ErrBadDSN) {
		t.Fatalf("Open(bad sslmode) err = %v, want ErrBadDSN", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestOpenPostgres(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Start(t)
	for _, scheme := range []string{"postgres", "postgresql"} {
		dsn := strings.Replace(srv.NewDB(t), "postgres://", scheme+"://", 1)
		st, err := Open(ctx, dsn, nil)
		if err != nil {
			t.Fatalf("Open(%s): %v", scheme, err)
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if err := st.CheckWrite(ctx); err != nil {
			t.Errorf("CheckWrite: %v", err)
		}
		_ = st.Close()
	}
}

func TestOpenSQLiteCreatesDirectory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new", "dir", "dt.db")
	st, err := Open(ctx, "sqlite://"+path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}
