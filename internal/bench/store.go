package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
	_ "github.com/jackc/pgx/v5/stdlib" // counting rows in a PostgreSQL store
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // counting rows in a SQLite store
)

// Fleet is the devices (and one admin user) registered in a store.
type Fleet struct {
	DSN        string
	IDs        []string
	Tokens     []string // device tokens, by index
	AdminToken string
}

// NewFleet migrates the store at dsn and registers n devices b-00001...
// and an admin user.
func (e *Env) NewFleet(ctx context.Context, dsn string, n int) (*Fleet, error) {
	s, err := backend.Open(ctx, dsn, zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	f := &Fleet{DSN: dsn}
	now := time.Now().UnixMilli()
	for i := range n {
		id := fmt.Sprintf("b-%05d", i+1)
		tok := token.New(token.DevicePrefix)
		if err := s.AddDevice(ctx, storage.Device{ID: id, Name: "bench", Group: "bench", CreatedAt: now}, token.Hash(tok)); err != nil {
			return nil, fmt.Errorf("register device %s: %w", id, err)
		}
		f.IDs = append(f.IDs, id)
		f.Tokens = append(f.Tokens, tok)
	}
	f.AdminToken = token.New(token.UserPrefix)
	if _, err := s.AddUser(ctx, storage.User{Name: "bench-admin", Role: "admin", CreatedAt: now}, token.Hash(f.AdminToken), nil); err != nil {
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	return f, nil
}

// CountRows counts the stored locations and logs.
func CountRows(ctx context.Context, dsn string) (int64, error) {
	driver, src := "sqlite", strings.TrimPrefix(dsn, "sqlite://")
	if strings.HasPrefix(dsn, "postgres") {
		driver, src = "pgx", dsn
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		return 0, fmt.Errorf("open store to count: %w", err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM locations) + (SELECT count(*) FROM logs)").Scan(&n); err != nil {
		return 0, fmt.Errorf("count stored rows: %w", err)
	}
	return n, nil
}
