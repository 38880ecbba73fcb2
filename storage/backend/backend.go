// Package backend opens the storage.Store named by a DSN. It is the one place
// that imports every store implementation, so that cmd can pick one from
// configuration while the services depend only on package storage.
package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/postgres"
	"github.com/devtrack/devtrack/storage/sqlite"
)

// ErrBadDSN is matched (errors.Is) by every error about a DSN that does not
// parse, so that callers can tell bad configuration from a store that fails.
var ErrBadDSN = errors.New("bad store DSN")

type dsnError struct{ err error }

func (e dsnError) Error() string        { return e.err.Error() }
func (e dsnError) Unwrap() error        { return e.err }
func (e dsnError) Is(target error) bool { return target == ErrBadDSN }

// Backend kinds a DSN can name.
const (
	kindSQLite   = "sqlite"
	kindPostgres = "postgres"
)

// dsn is a parsed DSN.
type dsn struct {
	kind string
	// path is the absolute path of the SQLite file.
	path string
	// url is the PostgreSQL DSN as given, for pgx to parse (libpq rules:
	// sslmode and the other TLS settings, PG* variables, .pgpass).
	url string
}

// Open opens the store named by dsnStr; the caller runs Migrate. Accepted forms:
//
//	sqlite:///abs/path.db   an absolute path
//	sqlite://rel/path.db    a path relative to the working directory
//	postgres://user:pass@host:port/db?sslmode=verify-full  (or postgresql://)
//
// For SQLite the parent directory of the file is created if missing. log may
// be nil.
func Open(ctx context.Context, dsnStr string, log *zap.Logger) (storage.Store, error) {
	d, err := parseDSN(dsnStr)
	if err != nil {
		return nil, dsnError{err}
	}
	switch d.kind {
	case kindSQLite:
		if err := os.MkdirAll(filepath.Dir(d.path), 0o750); err != nil {
			return nil, fmt.Errorf("storage: open %s: %w", d.path, err)
		}
		return sqlite.Open(ctx, d.path, log)
	case kindPostgres:
		st, err := postgres.Open(ctx, d.url, log)
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("storage: open: unknown store kind %q", d.kind)
}

// parseDSN checks the DSN and resolves a SQLite path to an absolute one. Its
// errors quote the DSN (which for SQLite holds no secret) and say what is wrong.
func parseDSN(s string) (dsn, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return dsn{}, fmt.Errorf("storage: bad DSN %q: want scheme://..., e.g. sqlite:///var/lib/devtrack/devtrack.db", s)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		return parseSQLite(s, rest)
	case "postgres", "postgresql":
		// The rest may hold a password: do not echo it.
		if rest == "" {
			return dsn{}, errors.New("storage: bad DSN: postgres:// without host or database")
		}
		if _, err := pgconn.ParseConfig(s); err != nil {
			// pgconn masks the password in its errors.
			return dsn{}, fmt.Errorf("storage: bad DSN: %w", err)
		}
		return dsn{kind: kindPostgres, url: s}, nil
	}
	return dsn{}, fmt.Errorf("storage: bad DSN %q: unknown scheme %q, want sqlite or postgres", s, scheme)
}

func parseSQLite(s, path string) (dsn, error) {
	switch {
	case path == "" || path == "/":
		return dsn{}, fmt.Errorf("storage: bad DSN %q: no file path, want sqlite:///abs/path.db or sqlite://rel/path.db", s)
	case strings.ContainsAny(path, "?#"):
		return dsn{}, fmt.Errorf("storage: bad DSN %q: query and fragment are not supported in a sqlite DSN", s)
	case strings.ContainsRune(path, 0):
		return dsn{}, fmt.Errorf("storage: bad DSN %q: NUL byte in path", s)
	case strings.HasSuffix(path, "/"):
		return dsn{}, fmt.Errorf("storage: bad DSN %q: path is a directory, want a file", s)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return dsn{}, fmt.Errorf("storage: bad DSN %q: %w", s, err)
	}
	return dsn{kind: kindSQLite, path: abs}, nil
}
