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
// indexMatches reads the index's matches up to indexPlanMax and picks: fewer
// means rare, so the index plan, which then sorts fewer than that many rows.

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	sqlite3 "modernc.org/sqlite"

	"github.com/devtrack/devtrack/storage"
)

// indexPlanMax is how many index matches the index plan sorts at most: above
// it, matches are common enough that a walk fills a page after about
// rows/indexPlanMax*limit rows. At 10M logs (BenchmarkSearch, load ~7): a
// common term walks in ~30 ms, a rare one takes the index in ~4 ms; near the
// bound (12,886 matches of a phrase) the index plan takes ~240 ms, most of it
// looking up the matched rows. A variable so that tests can force a plan.
var indexPlanMax = 20_000

// walkDeviceIndexMax is the most devices (LogQuery.Devices) for which a walk
// reads each device's logs through (device, ts) and sorts them; for more, it
// walks (ts) and checks the device of each row.
const walkDeviceIndexMax = 16

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
	ascii := isASCII(msg)
	var folded string
	if !ascii {
		folded = storage.Fold(msg)
	}
	for _, a := range args[1:] {
		t, _ := textArg(a)
		// An ASCII message folds to its ASCII lower case: compared as
		// such, in place, it costs no copy per row.
		if ascii && !containsLowerASCII(msg, t) || !ascii && !strings.Contains(folded, t) {
			return int64(0), nil
		}
	}
	return int64(1), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// containsLowerASCII reports whether the ASCII lower case of s contains sub
// (already folded). A sub with other bytes is not in an ASCII s.
func containsLowerASCII(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && lowerASCII(s[i+j]) == sub[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
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
	// trigrams are FTS5 strings of the terms the index can look up (see
	// ftsTrigrams), none when no term can be.
	trigrams []string
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
		for _, g := range ftsTrigrams(f) {
			if !slices.Contains(s.trigrams, g) {
				s.trigrams = append(s.trigrams, g)
			}
		}
	}
	return s, nil
}

// ftsTrigrams are FTS5 strings of trigrams of a folded term, which the index
// ANDs: trigrams from the start, three characters apart, and the last one,
// so that every character is in one. A message that holds the term holds
// them all, so the index misses nothing; it may find a message that holds
// them elsewhere, which devtrack_match then drops. This is a fraction of the
// phrase of every trigram, which FTS5 must also check for positions: for
// "failed after 42 retries", 8 strings instead of a phrase of 21 (measured
// in BenchmarkSearch). In an FTS5 string every character is literal but the
// double quote, written twice. A term shorter than three characters has no
// trigram; one with a NUL is left out too (FTS5 reads the query as a C
// string): devtrack_match checks both.
func ftsTrigrams(term string) []string {
	if strings.IndexByte(term, 0) >= 0 {
		return nil
	}
	runes := []rune(term)
	if len(runes) < minIndexedRunes {
		return nil
	}
	var out []string
	quote := func(i int) {
		out = append(out, `"`+strings.ReplaceAll(string(runes[i:i+minIndexedRunes]), `"`, `""`)+`"`)
	}
	i := 0
	for ; i+minIndexedRunes <= len(runes); i += minIndexedRunes {
		quote(i)
	}
	if i < len(runes) {
		quote(len(runes) - minIndexedRunes)
	}
	return out
}

// matchArgs is the SQL call of devtrack_match on column and its arguments.
func (s *search) matchArgs(column string) (string, []any) {
	args := make([]any, len(s.folded))
	for i, t := range s.folded {
		args[i] = t
	}
	return "devtrack_match(" + column + strings.Repeat(", ?", len(args)) + ")", args
}

// indexMatches returns, as a JSON array, the rows that the index matches
// when there are at most indexPlanMax of them: the index plan then looks up
// only those. ok is false when there are more, or when no term can be looked
// up: the walk is the quicker plan. The index is read once.
func (s *Store) indexMatches(ctx context.Context, srch *search) (ids string, ok bool, err error) {
	if len(srch.trigrams) == 0 {
		return "", false, nil
	}
	match, err := s.rarestTrigrams(ctx, srch.trigrams)
	if err != nil {
		return "", false, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? LIMIT ?`,
		strings.Join(match, " "), indexPlanMax+1)
	if err != nil {
		return "", false, fmt.Errorf("search the index: %w", err)
	}
	defer rows.Close()
	b := make([]byte, 0, 256)
	b = append(b, '[')
	n := 0
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return "", false, fmt.Errorf("search the index: %w", err)
		}
		if n++; n > indexPlanMax {
			return "", false, closeRows(rows, "search the index")
		}
		if n > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	if err := rows.Err(); err != nil {
		return "", false, fmt.Errorf("search the index: %w", err)
	}
	return string(append(b, ']')), true, nil
}

// Trigram choice. FTS5 ANDs trigrams by seeking every list to each row of
// the others, so its cost grows with the number of trigrams and the length
// of their lists; the trigrams of a long term mostly repeat what two rare
// ones already narrow down. At 10M logs, "failed after 42 retries" (12,886
// matches): all 8 trigrams 0.7-1.4 s, the 2 rarest 50-80 ms.
const (
	// maxTrigrams is how many trigrams the index is asked for at most.
	maxTrigrams = 2
	// trigramSample is how many of the newest logs rarestTrigrams counts
	// each trigram in: a few ms per trigram however common.
	trigramSample = 20_000
)

// rarestTrigrams returns the maxTrigrams trigrams that are rarest among the
// newest trigramSample logs (all of them if there are no more). Any subset
// is sound: every trigram is in every message that holds its term.
func (s *Store) rarestTrigrams(ctx context.Context, trigrams []string) ([]string, error) {
	if len(trigrams) <= maxTrigrams {
		return trigrams, nil
	}
	var newest int64
	if err := s.rdb.QueryRowContext(ctx, maxLogSeqSQL).Scan(&newest); err != nil {
		return nil, fmt.Errorf("sample trigrams: %w", err)
	}
	counts := make(map[string]int, len(trigrams))
	for _, g := range trigrams {
		var n int
		if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM logs_fts WHERE logs_fts MATCH ? AND rowid > ?`,
			g, newest-trigramSample).Scan(&n); err != nil {
			return nil, fmt.Errorf("sample trigram %s: %w", g, err)
		}
		counts[g] = n
	}
	out := slices.Clone(trigrams)
	slices.SortStableFunc(out, func(a, b string) int { return counts[a] - counts[b] })
	return out[:maxTrigrams], nil
}
