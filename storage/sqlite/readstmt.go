package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// readStmts holds the prepared statements of the hot read queries: the
// token and id look-ups that every device and viewer handshake and every
// API request makes. database/sql prepares a query at each call otherwise,
// and the profile of 2,000 viewers connecting (BenchmarkViewerIdle) showed
// SQLite parsing the same three statements again for each: its parser 16%
// of the process's CPU. A *sql.Stmt of the pool prepares itself once on
// each connection it runs on.
type readStmts struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// readStmt returns the prepared statement of query on the read pool.
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.reads.mu.Lock()
	defer s.reads.mu.Unlock()
	if st, ok := s.reads.stmts[query]; ok {
		return st, nil
	}
	st, err := s.rdb.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if s.reads.stmts == nil {
		s.reads.stmts = map[string]*sql.Stmt{}
	}
	s.reads.stmts[query] = st
	return st, nil
}

// queryRow runs a one-row read query through its prepared statement.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.readStmt(ctx, query)
	if err != nil {
		// The same query unprepared reports the same failure in Scan.
		return s.rdb.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// close closes the statements; the cache is empty afterwards.
func (r *readStmts) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for q, st := range r.stmts {
		errs = append(errs, st.Close())
		delete(r.stmts, q)
	}
	return errors.Join(errs...)
}
