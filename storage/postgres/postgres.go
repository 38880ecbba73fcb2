package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/devtrack/devtrack/storage"
)

var _ storage.Store = (*Store)(nil)

// connectTimeout bounds a connection attempt to a server that does not
// answer (a black-holed host), so that an outage is reported, not hung on;
// used when the DSN has no connect_timeout. The pool's size is pgxpool's
// default (the larger of 4 and the CPUs) unless the DSN sets pool_max_conns.
const connectTimeout = 10 * time.Second

// Store is a storage.Store on one PostgreSQL database. It is safe for
// concurrent use, also by several processes on several hosts.
type Store struct {
	log   *zap.Logger
	pool  *pgxpool.Pool
	parts partitions
	// explain, when set (by the search benchmark, before use), receives
	// the EXPLAIN ANALYZE of every log page query as it runs.
	explain func(plan string)

	closeOnce sync.Once
}

// Open connects to the database named by dsn, a libpq URL
// (postgres://user:pass@host:port/db?sslmode=verify-full&...) or key=value
// string; the PG* environment variables, ~/.pgpass and the TLS settings of
// libpq apply as pgx parses them. The schema is not touched: call Migrate.
// Errors never hold the password and are one line, also when pgx lists
// every address it tried. log may be nil.
func Open(ctx context.Context, dsn string, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx masks the password in its parse errors.
		return nil, fmt.Errorf("postgres: open: %w", oneLine(err))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if _, set := cfg.ConnConfig.RuntimeParams["application_name"]; !set {
		cfg.ConnConfig.RuntimeParams["application_name"] = "devtrack"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", oneLine(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", serverName(cfg), classify(err))
	}
	log.Debug("postgres store opened", zap.String("server", serverName(cfg)), zap.String("database", cfg.ConnConfig.Database))
	return &Store{log: log, pool: pool, parts: newPartitions()}, nil
}

// serverName names the server of cfg for messages: host:port and database, no
// user or password.
func serverName(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// Close closes the pool, waiting for connections in use to be released. It
// is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", classify(err))
	}
	return nil
}

// nowMS is the store's clock, in Unix milliseconds.
func nowMS() int64 { return time.Now().UnixMilli() }

// errNoNUL is the reason for refusing text that holds a NUL byte, which
// PostgreSQL text cannot hold.
var errNoNUL = errors.New("holds a NUL byte, which PostgreSQL text cannot store")

// validText refuses what a PostgreSQL text column cannot hold, as a value
// or a query argument: the server would fail the whole statement. Records
// are refused the same by storage.ValidateBatch, on every store.
func validText(name, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %w", name, errNoNUL)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	return nil
}
