package sqlite

// Log search (storage.SearchTerms) on SQLite.
//
// logs_fts indexes the trigrams of every message folded by storage.Fold
// (migration 0004). A search term of three or more characters is a phrase of
// trigrams there, so the index finds exactly the messages that contain it;
// shorter terms have no trigram and the index cannot help them. Every term is
// then checked on the message itself by devtrack_match, the reference rule
// (storage.MatchesSearch) as an SQL function, so both kinds of terms, and
// the text that the index only approximates (a NUL), get the answer of the
// rules, whatever plan found the row.
//
// Two plans give a page, both newest first:
//   - walk: read logs newest first on the (ts) index (or (device, ts),
//     (level, ts)) and keep the rows devtrack_match accepts, until the page is
//     full. Quick when matches are common, since a page needs few rows;
//     slow when they are rare, since it reads until it has found them.
//   - index: take every row that the trigram index matches, then sort them.
//     Quick when matches are rare; slow when common, since all are sorted.
// searchPlan counts the index's matches up to indexPlanMax and picks: fewer
// means rare, so the index plan, which then sorts fewer than that many rows.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"unicode/utf8"

	sqlite3 "modernc.org/sqlite"

	"github.com/devtrack/devtrack/storage"
)

// indexPlanMax is how many index matches the index plan sorts at most: above
// it, matches are common enough that a walk fills a page after about
// rows/indexPlanMax*limit rows. At 10 million logs both plans answer the first
// page of 100 in well under 200 ms on either side of it (see BenchmarkSearch).
// A variable so that tests can force either plan.
var indexPlanMax = 20_000

// minIndexedRunes is the shortest term the trigram index can look up.
const minIndexedRunes = 3

// The functions are registered with VolatileArgs rather than through
// RegisterDeterministicScalarFunction: without it the driver copies a TEXT
// argument up to its first NUL (libc.GoString), so a message "a\x00b" would
// reach Go as "a"; the volatile view has SQLite's length and costs no copy
// per row. Neither function keeps an argument past its return (a result is
// copied by the driver before the call ends).
func init() {
	for name, impl := range map[string]*sqlite3.FunctionImpl{
		// devtrack_fold(text) is storage.Fold: what logs_fts indexes.
		"devtrack_fold": {NArgs: 1, Deterministic: true, VolatileArgs: true, Scalar: foldFunc},
		// devtrack_match(message, term, ...) is storage.MatchesSearch
		// with the terms already folded: 1 when the message holds every
		// term.
		"devtrack_match": {NArgs: -1, Deterministic: true, VolatileArgs: true, Scalar: matchFunc},
	} {
		sqlite3.MustRegisterFunction(name, impl)
	}
}

func foldFunc(_ *sqlite3.FunctionContext, args []driver.Value) (driver.Value, error) {
	s, ok := textArg(args[0])
	if !ok {
		return args[0], nil
	}
	return storage.Fold(s), nil
}

func matchFunc(_ *sqlite3.FunctionContext, args []driver.Value) (driver.Value, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("devtrack_match: no message")
	}
	msg, ok := textArg(args[0])
	if !ok {
		return int64(0), nil
	}
	folded := storage.Fold(msg)
	for _, a := range args[1:] {
		t, _ := textArg(a)
		if !strings.Contains(folded, t) {
			return int64(0), nil
		}
	}
	return int64(1), nil
}

// textArg is the string of a TEXT (or BLOB) argument; false for NULL.
func textArg(v driver.Value) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	}
	return "", false
}

// search is a parsed LogQuery.Text.
type search struct {
	// folded are the terms in lower case, the arguments of devtrack_match.
	folded []string
	// match is the FTS5 query of the terms the index can look up, "" if none.
	match string
}

// parseSearch parses text by storage.SearchTerms; nil for no terms.
func parseSearch(text string) (*search, error) {
	terms, err := storage.SearchTerms(text)
	if err != nil || len(terms) == 0 {
		return nil, err
	}
	s := &search{}
	for _, t := range terms {
		f := storage.Fold(t)
		s.folded = append(s.folded, f)
		if q, ok := ftsPhrase(f); ok {
			if s.match != "" {
				s.match += " "
			}
			s.match += q
		}
	}
	return s, nil
}

// ftsPhrase makes a folded term an FTS5 string, which the trigram tokenizer
// reads as the phrase of its trigrams: every character is literal there but
// the double quote, written twice. A term shorter than three characters has
// no trigram; a NUL would end the query string (FTS5 reads it as a C
// string): neither is looked up, devtrack_match checks them.
func ftsPhrase(term string) (string, bool) {
	if utf8.RuneCountInString(term) < minIndexedRunes || strings.IndexByte(term, 0) >= 0 {
		return "", false
	}
	return `"` + strings.ReplaceAll(term, `"`, `""`) + `"`, true
}

// matchArgs is the SQL call of devtrack_match on column and its arguments.
func (s *search) matchArgs(column string) (string, []any) {
	args := make([]any, len(s.folded))
	for i, t := range s.folded {
		args[i] = t
	}
	return "devtrack_match(" + column + strings.Repeat(", ?", len(args)) + ")", args
}

// useIndex reports whether the index plan is the quicker one: whether the
// index matches fewer than indexPlanMax rows.
func (s *Store) useIndex(ctx context.Context, srch *search) (bool, error) {
	if srch.match == "" {
		return false, nil
	}
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM
		(SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? LIMIT ?)`, srch.match, indexPlanMax).Scan(&n)
	if err != nil && err != sql.ErrNoRows {
		return false, fmt.Errorf("count index matches: %w", err)
	}
	return n < indexPlanMax, nil
}
