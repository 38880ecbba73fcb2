package pgtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// query runs a one-value query on dsn with a timeout.
func query(dsn string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n)
	return n, err
}

func TestLifeCycle(t *testing.T) {
	s := Start(t)
	if s.Port() == 5432 {
		t.Fatal("listening on 5432")
	}
	dsn := s.NewDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)

	s.Pause()
	if _, err := query(dsn, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("query on a paused server: %v, want a deadline", err)
	}
	s.Resume()
	if n, err := query(dsn, 5*time.Second); err != nil || n != 1 {
		t.Fatalf("after Resume: %d, %v", n, err)
	}

	s.Stop()
	if _, err := query(dsn, time.Second); err == nil {
		t.Errorf("query on a stopped server succeeded")
	}
	s.Start()
	if n, err := query(dsn, 5*time.Second); err != nil || n != 1 {
		t.Fatalf("after Stop and Start: %d, %v", n, err)
	}

	s.Kill()
	s.Start()
	if n, err := query(dsn, 5*time.Second); err != nil || n != 1 {
		t.Fatalf("after Kill and Start: %d, %v", n, err)
	}
}

func TestSharedAndTemplate(t *testing.T) {
	s := Shared(t)
	if Shared(t) != s {
		t.Fatal("Shared started a second server")
	}
	s.Template(t, "tmpl", func(dsn string) error {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)`)
		return err
	})
	a, b := s.NewDBFrom(t, "tmpl"), s.NewDBFrom(t, "tmpl")
	if a == b {
		t.Fatalf("two databases with one DSN %s", a)
	}
	for _, dsn := range []string{a, b} {
		if n, err := query(dsn, 5*time.Second); err != nil || n != 2 {
			t.Errorf("%s: %d rows, %v; want the template's 2", dsn, n, err)
		}
	}
}
