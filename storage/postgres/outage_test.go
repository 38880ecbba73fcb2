package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
)

func oneLog(id string) storage.Batch {
	return storage.Batch{Logs: []storage.LogEntry{{Device: "d1", ID: id, TS: time.Now().UnixMilli(), Level: "info", Message: "m " + id}}}
}

// TestOutage plays the server stopped, frozen and killed under one Store:
// writes fail with ErrUnavailable while it is out, and the same Store
// writes again once it is back (the pool reconnects).
func TestOutage(t *testing.T) {
	ctx := context.Background()
	// Durable: what was acknowledged must survive the Kill.
	srv := pgtest.StartWith(t, pgtest.Options{Durable: true})
	st := openStore(t, srv.NewDB(t))
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	saveOK := func(when string) {
		t.Helper()
		n++
		var err error
		// The first write after a restart may meet a pooled connection
		// that the old server closed; that one fails and is dropped.
		for range 3 {
			if _, err = st.SaveBatch(ctx, oneLog(fmt.Sprint(n))); err == nil {
				return
			}
		}
		t.Fatalf("%s: SaveBatch: %v", when, err)
	}
	wantUnavailable := func(when string) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := st.SaveBatch(cctx, oneLog("x"))
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s: SaveBatch: %v, want ErrUnavailable", when, err)
		}
		if err := st.CheckWrite(cctx); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s: CheckWrite: %v, want ErrUnavailable", when, err)
		}
		if _, _, err := st.Logs(cctx, storage.LogQuery{}); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s: Logs: %v, want ErrUnavailable", when, err)
		}
		if _, err := st.Device(cctx, "\x00readyz"); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s: Device(readiness probe): %v, want ErrUnavailable", when, err)
		}
		t.Logf("%s: classified in %v", when, time.Since(start).Round(time.Millisecond))
	}

	saveOK("before")
	srv.Stop()
	wantUnavailable("stopped")
	srv.Start()
	saveOK("after Start")

	srv.Pause()
	wantUnavailable("paused")
	srv.Resume()
	saveOK("after Resume")

	srv.Kill()
	wantUnavailable("killed")
	srv.Start()
	saveOK("after Kill and Start")

	logs, _, err := st.Logs(ctx, storage.LogQuery{})
	if err != nil || len(logs) != n {
		t.Errorf("Logs: %d, %v; want the %d saved", len(logs), err, n)
	}
}

// TestAdminShutdownUnavailable: a session ended by the server
// (pg_terminate_backend, 57P01) is an outage, not a bad record.
func TestAdminShutdownUnavailable(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, true)
	conn, err := st.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	other := openStore(t, st.pool.Config().ConnString())
	if _, err := other.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SELECT 1`)
	if err == nil || !errors.Is(classify(err), storage.ErrUnavailable) {
		t.Fatalf("query on a terminated session: %v, want it classified ErrUnavailable", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err         error
		unavailable bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true}, // admin_shutdown
		{&pgconn.PgError{Code: "57P02"}, true}, // crash_shutdown
		{&pgconn.PgError{Code: "57P03"}, true}, // cannot_connect_now
		{&pgconn.PgError{Code: "53100"}, true}, // disk_full
		{&pgconn.PgError{Code: "53200"}, true}, // out_of_memory
		{&pgconn.PgError{Code: "53300"}, true}, // too_many_connections
		{&pgconn.PgError{Code: "08006"}, true}, // connection_failure
		{&pgconn.PgError{Code: "25006"}, true}, // read_only_sql_transaction
		{&pgconn.PgError{Code: "55P03"}, true}, // lock_not_available
		{&pgconn.PgError{Code: "57014"}, true}, // query_canceled (statement_timeout)
		{&pgconn.PgError{Code: "58030"}, true}, // io_error
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "22021"}, false}, // character_not_in_repertoire
		{&pgconn.PgError{Code: "22P02"}, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{errors.New("something else"), false},
	}
	for _, tc := range tests {
		if got := errors.Is(classify(tc.err), storage.ErrUnavailable); got != tc.unavailable {
			t.Errorf("classify(%v) unavailable = %v, want %v", tc.err, got, tc.unavailable)
		}
	}
	if err := classify(fmt.Errorf("%w", storage.ErrInvalid)); errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("an invalid record was classified unavailable")
	}
}
