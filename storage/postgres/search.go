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
//  2. Otherwise the term is rare among recent rows. When a term has three
//     letters or digits in a row, pg_trgm's GIN index (logs_message_trgm)
//     can find it anywhere: the query runs with plain index scans turned
//     off, so the planner takes the bitmap path through the trigram index
//     (its estimate for ILIKE patterns cannot tell rare from common terms).
//     Shorter terms (開門, ok) have no trigram: the query walks newest
//     first to the end if it must.
//
// Step 1 returns a page only when it found limit+1 matches, which are then
// the first limit+1 of the whole answer in its order; so both steps give the
// same pages and the same cursors.
const searchProbeRows = 20000

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
	full := `SELECT ` + logColumns + ` FROM logs` + w.sql() + pageOrder
	if !hasTrigram(terms) {
		return s.logPage(ctx, s.pool, full, w.args, limit)
	}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off`); err != nil {
			return err
		}
		var err error
		out, next, err = s.logPage(ctx, tx, full, w.args, limit)
		return err
	})
	return out, next, err
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
