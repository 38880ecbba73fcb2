package sqlite

// Log search (storage.SearchTerms) on SQLite.
//
// logs_fts indexes the trigrams of every message folded by storage.Fold and
// followed by two U+0001 (devtrack_fts_text, migrations 0004 and 0005). A
// search term of three or more characters is found there as a phrase of
// trigrams; a term of one or two characters as the trigrams that start with
// it, which the index's vocabulary lists. Either way the index finds every
// message that holds the term and maybe some others: every row is then
// checked by devtrack_match, the reference rule (storage.MatchesSearch) as
// an SQL function, so that whatever plan found a row (plan.go), the answer
// is the rules' one.

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	sqlite3 "modernc.org/sqlite"

	"github.com/devtrack/devtrack/storage"
)

// walkDeviceIndexMax is the most devices (LogQuery.Devices) for which a walk
// reads each device's logs through (device, ts) and sorts them; for more, it
// walks (ts) and checks the device of each row.
const walkDeviceIndexMax = 16

// minIndexedRunes is the length of a trigram: a term this long or longer is
// looked up as a phrase of its trigrams, a shorter one by prefixTrigrams.
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
		// devtrack_fts_text(message) is what logs_fts indexes of a
		// message: devtrack_fold(message) and ftsPadding.
		"devtrack_fts_text": {NArgs: 1, Deterministic: true, VolatileArgs: true, Scalar: ftsTextFunc},
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

// ftsPadding follows every indexed message, so that each of its characters
// starts a trigram and a term of one or two characters is the start of a
// trigram wherever it occurs (see prefixTrigrams).
const ftsPadding = "\x01\x01"

func ftsTextFunc(_ *sqlite3.FunctionContext, args []driver.Value) (driver.Value, error) {
	s, ok := textArg(args[0])
	if !ok {
		return args[0], nil
	}
	return storage.Fold(s) + ftsPadding, nil
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
	// trigrams are FTS5 strings of the trigrams of the terms of three or
	// more characters (see ftsTrigrams).
	trigrams []string
	// short are the terms of one or two characters but for those with a
	// NUL, which FTS5 cannot be asked for (see ftsTrigrams).
	short []string
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
		if utf8.RuneCountInString(f) < minIndexedRunes {
			if strings.IndexByte(f, 0) < 0 && !slices.Contains(s.short, f) {
				s.short = append(s.short, f)
			}
			continue
		}
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
	quote := func(i int) { out = append(out, ftsString(string(runes[i:i+minIndexedRunes]))) }
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

// ftsString quotes a trigram as an FTS5 string: every character is
// literal but the double quote, written twice.
func ftsString(trigram string) string {
	return `"` + strings.ReplaceAll(trigram, `"`, `""`) + `"`
}

// Trigram choice. FTS5 ANDs trigrams by seeking every list to each row of
// the others, so its cost grows with the number of trigrams and the length
// of their lists; the trigrams of a long term mostly repeat what two rare
// ones already narrow down. At 10M logs, "failed after 42 retries" (12,886
// matches): all 8 trigrams 133 ms, the 2 rarest 15 ms.
const (
	// maxTrigrams is how many trigrams the index is asked for at most.
	maxTrigrams = 2
	// maxProbes is how many trigrams rarestTrigrams looks at, at most.
	maxProbes = 24
	// probeDepth is how far back from the newest log rarestTrigrams reads
	// each trigram's list: a fraction of a millisecond however common.
	probeDepth = 1000
)

// rarestTrigrams returns the maxTrigrams trigrams that are rarest among the
// newest logs, which are the ones a page wants first. A trigram's rarity is
// how far back its probeDepth-th newest log is (its list is read from the
// newest end); one with fewer logs is rarer than any. Any subset of the
// trigrams is sound: every one is in every message that holds its term.
func (s *Store) rarestTrigrams(ctx context.Context, trigrams []string) ([]string, error) {
	if len(trigrams) <= maxTrigrams {
		return trigrams, nil
	}
	probed := trigrams
	if len(probed) > maxProbes {
		// Spread over the terms: trigrams are in the order of their terms.
		probed = make([]string, maxProbes)
		for i := range probed {
			probed[i] = trigrams[i*len(trigrams)/maxProbes]
		}
	}
	depth := make(map[string]int64, len(probed))
	for _, g := range probed {
		var seq int64
		err := s.rdb.QueryRowContext(ctx, `SELECT rowid FROM logs_fts WHERE logs_fts MATCH ?
			ORDER BY rowid DESC LIMIT 1 OFFSET ?`, g, probeDepth-1).Scan(&seq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("probe trigram %s: %w", g, err)
		}
		depth[g] = seq // 0, the rarest, for fewer than probeDepth logs
	}
	out := slices.Clone(probed)
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(depth[a], depth[b]) })
	return out[:maxTrigrams], nil
}

// maxPrefixTrigrams is how many trigrams a short term may start for the
// index to be asked for them (ORed): more, and the term is too common for
// the index to help.
const maxPrefixTrigrams = 256

// prefixTrigrams returns, as FTS5 strings, the trigrams of the index that
// start with the short term t, at most maxPrefixTrigrams+1. With the padding
// of every message (ftsPadding), a message holds t exactly where one of
// them starts, so none means that no log holds t. The vocabulary is read in
// order from t: the cost is the length of the lists of the trigrams read.
func (s *Store) prefixTrigrams(ctx context.Context, t string) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT term FROM logs_fts_terms WHERE term >= ? AND term <= ? LIMIT ?`,
		t, t+"\U0010FFFF\U0010FFFF", maxPrefixTrigrams+1)
	if err != nil {
		return nil, fmt.Errorf("list the trigrams of %q: %w", t, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("list the trigrams of %q: %w", t, err)
		}
		out = append(out, ftsString(g))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the trigrams of %q: %w", t, err)
	}
	return out, nil
}
