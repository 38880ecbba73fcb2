package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewDB creates an empty database for the test, dropped when the test ends,
// and returns its DSN.
func (s *Server) NewDB(t testing.TB) string {
	t.Helper()
	return s.NewDBFrom(t, "template0")
}

// NewDBFrom is NewDB with a copy of template (see Template) instead of an
// empty database: copying a prepared database is much faster than building
// the same schema again in every test.
func (s *Server) NewDBFrom(t testing.TB, template string) string {
	t.Helper()
	s.dbMu.Lock()
	s.dbN++
	name := fmt.Sprintf("t%d_%s", s.dbN, dbSafe(t.Name()))
	s.dbMu.Unlock()
	if err := s.Exec(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`,
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize())); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// A test that stopped the server and left it so has nothing to drop.
		if !s.running() {
			return
		}
		if err := s.Exec(`DROP DATABASE IF EXISTS ` + pgx.Identifier{name}.Sanitize() + ` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// Template makes database name once per server by running fill on its DSN
// and marks it a template for NewDBFrom. fill must close its connections
// (a database being copied must have none). Later calls with the same name
// return the outcome of the first.
func (s *Server) Template(t testing.TB, name string, fill func(dsn string) error) {
	t.Helper()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	err, done := s.tmpl[name]
	if !done {
		err = s.makeTemplate(name, fill)
		s.tmpl[name] = err
	}
	if err != nil {
		t.Fatalf("pgtest: template %s: %v", name, err)
	}
}

func (s *Server) makeTemplate(name string, fill func(dsn string) error) error {
	id := pgx.Identifier{name}.Sanitize()
	if err := s.Exec(`CREATE DATABASE ` + id + ` TEMPLATE template0`); err != nil {
		return err
	}
	if err := fill(s.DSN(name)); err != nil {
		return err
	}
	return s.Exec(`ALTER DATABASE ` + id + ` IS_TEMPLATE true`)
}

// Exec runs sql on the postgres database as the superuser.
func (s *Server) Exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// dbSafe makes a database name part from a test name: lower case letters,
// digits and _, short enough for the 63-byte limit with the prefix.
func dbSafe(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, name)
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return name
}
