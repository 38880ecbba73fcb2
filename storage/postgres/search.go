package postgres

import (
	"context"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/devtrack/devtrack/storage"
)

// Log search (LogQuery.Text) follows storage.SearchTerms exactly: every term
// must occur in the message as a substring, ignoring case. Each term is one
// ILIKE with %, _ and \ escaped, so nothing in it is syntax. ILIKE folds
// case by the database's LC_CTYPE, which is storage.Fold (unicode.ToLower)
// under a UTF-8 locale such as C.UTF-8 or en_US.UTF-8; Migrate warns on a
// database that does not fold non-ASCII letters.
//
// A search is answered in at most two steps, because no single plan is fast
// for every term:
//  1. The newest searchProbeRows rows that pass the other filters are
//     walked newest first and matched. A common term fills the page there,
//     in a few milliseconds, whatever the size of the archive.
//  2. Otherwise the probe's matches estimate how far a walk must go to
//     fill the page. When that is at most searchWalkRows rows, the query
//     walks newest first (bitmap scans off). Else the terms are rare:
//     a term with three letters or digits in a row is looked up in
//     pg_trgm's GIN index (logs_message_trgm), a shorter one with a
//     non-ASCII character (開門) in the bigram index (logs_message_bigrams,
//     migration 00002), with plain index scans off so that the planner
//     takes the bitmap path (its estimates for ILIKE cannot tell rare from
//     common terms). A short ASCII term (ok) has no index and walks.
//
// Step 1 returns a page only when it found limit+1 matches, which are then
// the first limit+1 of the whole answer in its order; step 2 is the whole
// query; so pages and cursors do not depend on the path taken.
//
// They are variables so that a test can force every path on small data.
var (
	searchProbeRows = 5000
	searchWalkRows  = 50000
)

// likePattern is the ILIKE pattern for a substring: the term between %,
// with the pattern characters of the term escaped (\ is ILIKE's escape).
func likePattern(term string) string {
	return "%" + likeEscaper.Replace(term) + "%"
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func (s *Store) searchPage(ctx context.Context, w where, text, terms []string, limit int) ([]storage.LogEntry, string, error) {
	inner := `SELECT ` + logColumns + ` FROM logs` + w.sql() + pageOrder + ` LIMIT ` + itoa(searchProbeRows)
	probe := `SELECT ` + logColumns + ` FROM (` + inner + `) recent WHERE ` + strings.Join(text, " AND ") + pageOrder
	out, next, err := s.logPage(ctx, s.pool, probe, w.args, limit)
	if err != nil || next != "" {
		return out, next, err
	}
	w.conds = append(w.conds, text...)
	setting := "" // the plan switch of step 2, "" for none
	switch {
	case len(out) > 0 && (limit+1-len(out))*searchProbeRows/len(out) <= searchWalkRows:
		setting = "enable_bitmapscan"
	case hasTrigram(terms):
		setting = "enable_indexscan"
	default:
		if bigrams := termBigrams(terms); len(bigrams) > 0 {
			w.add("devtrack_bigrams(message) @> " + w.arg(bigrams))
			setting = "enable_indexscan"
		}
	}
	full := `SELECT ` + logColumns + ` FROM logs` + w.sql() + pageOrder
	if setting == "" {
		return s.logPage(ctx, s.pool, full, w.args, limit)
	}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// A custom plan for these values of the terms (a cached generic
		// plan cannot know that the bigram lookup is selective, and walked
		// 10M rows in 5 s); no parallel workers and no JIT, whose start
		// costs more than a LIMIT 101 query on an index (the estimate of a
		// bitmap scan over 31 partitions passes jit_above_cost: 400 ms of
		// JIT compilation for 0.7 ms of execution at 10M rows).
		if _, err := tx.Exec(ctx, `SELECT set_config($1, 'off', true),
			set_config('plan_cache_mode', 'force_custom_plan', true),
			set_config('max_parallel_workers_per_gather', '0', true),
			set_config('jit', 'off', true)`, setting); err != nil {
			return err
		}
		var err error
		out, next, err = s.logPage(ctx, tx, full, w.args, limit)
		return err
	})
	return out, next, err
}

// termBigrams are the two-character substrings of the lower-cased terms
// that devtrack_bigrams indexes (a non-ASCII character, no white space):
// every one must be among a matching message's. Lower-casing here and in
// the server agree for the characters that matter (scripts without case,
// and the usual letters with it); a mismatch could only hide a row in this
// rare-term path, and Fold mismatches are checked by the search suite.
func termBigrams(terms []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range terms {
		r := []rune(storage.Fold(t))
		for i := 0; i+1 < len(r); i++ {
			a, b := r[i], r[i+1]
			if (a < 0x80 && b < 0x80) || unicode.IsSpace(a) || unicode.IsSpace(b) || a == 0 || b == 0 {
				continue
			}
			bg := string([]rune{a, b})
			if !seen[bg] {
				seen[bg] = true
				out = append(out, bg)
			}
		}
	}
	return out
}

// hasTrigram reports whether a term has three letters or digits in a row,
// from which pg_trgm extracts a trigram that its index can look up.
func hasTrigram(terms []string) bool {
	for _, t := range terms {
		run := 0
		for _, r := range t {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				run++
				if run >= 3 {
					return true
				}
			} else {
				run = 0
			}
		}
	}
	return false
}
