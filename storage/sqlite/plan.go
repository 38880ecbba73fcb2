package sqlite

// How a page of a search is read. Three plans give it, newest first, each
// checking every row it keeps with devtrack_match:
//   - walk: read logs in page order on the (ts) index (or (device, ts),
//     (level, ts)) until the page is full. Quick when matches are common,
//     a page needs few rows; slow when they are rare (8 s to read 10M).
//   - filtered walk: the walk, keeping only the index's candidates, which
//     it checks on the (ts) index itself before it reads a row: about
//     0.1 µs for each log passed over. Quick when candidates are neither
//     common (the walk is as quick) nor few.
//   - sort: look up every candidate, keep the matches and sort them: about
//     3 µs each. Quick when candidates are few.
//
// planSearch picks one from the index's candidates, counted up to
// candidateMax: the sort for up to sortMax, the filtered walk up to
// candidateMax, the walk for more. At 10M logs (BenchmarkSearch): 12,886
// candidates take 38 ms sorted and 9 ms in a filtered walk; 786 take 0.3 ms
// sorted and 760 ms in a filtered walk, which passes over every log.
//
// The candidates of the terms of three or more characters come from their
// rarest trigrams. When these find too many or there are none, the short
// terms (one or two characters) are added, through the trigrams that start
// them, but only after a short walk has not filled the page: listing the
// trigrams of a common short term costs more than the walk it would spare
// (a for 285 ms, 開門 for 25 ms at 10M logs).

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The plan bounds are variables so that tests can force every plan.
var (
	// candidateMax is the most candidates read from the index: above it
	// matches are common enough for the walk, which then reads about
	// rows/candidateMax*limit logs.
	candidateMax = 20_000
	// sortMax is the most candidates that the sort plan takes.
	sortMax = 4_000
	// sampleRows is how many logs, in page order, the short walk of
	// planSearch reads at most before short terms go to the index.
	sampleRows = 16_384
)

type planKind int

const (
	planWalk planKind = iota
	planFilteredWalk
	planSort
)

func (k planKind) String() string {
	return [...]string{"walk", "filtered walk", "sort"}[k]
}

// logsPlan is the plan of a search page.
type logsPlan struct {
	kind planKind
	// ids are the candidates of the filtered walk and the sort, a JSON
	// array of seq.
	ids string
}

// planSearch picks the plan of srch within the filters of w (device, level,
// time, cursor; no page limit). limit is the page size.
func (s *Store) planSearch(ctx context.Context, srch *search, w where, limit int) (logsPlan, error) {
	var parts []string
	if len(srch.trigrams) > 0 {
		rarest, err := s.rarestTrigrams(ctx, srch.trigrams)
		if err != nil {
			return logsPlan{}, err
		}
		parts = append(parts, strings.Join(rarest, " AND "))
		if p, ok, err := s.candidatePlan(ctx, parts); ok || err != nil {
			return p, err
		}
	}
	if len(srch.short) == 0 {
		return logsPlan{kind: planWalk}, nil
	}
	hits, err := s.walkHits(ctx, srch, w, sampleRows, limit+1)
	if err != nil || hits > limit {
		return logsPlan{kind: planWalk}, err
	}
	for _, t := range srch.short {
		trigrams, err := s.prefixTrigrams(ctx, t)
		if err != nil {
			return logsPlan{}, err
		}
		if len(trigrams) == 0 {
			// No log holds t: the sort of no candidates, which still
			// checks the cursor.
			return logsPlan{kind: planSort, ids: "[]"}, nil
		}
		if len(trigrams) <= maxPrefixTrigrams {
			parts = append(parts, "("+strings.Join(trigrams, " OR ")+")")
		}
	}
	if p, ok, err := s.candidatePlan(ctx, parts); ok || err != nil {
		return p, err
	}
	return logsPlan{kind: planWalk}, nil
}

// candidatePlan reads the logs that the index matches for the AND of parts
// (FTS5 expressions), and returns the plan for them; ok is false when there
// are none to ask for or more than candidateMax.
func (s *Store) candidatePlan(ctx context.Context, parts []string) (p logsPlan, ok bool, err error) {
	if len(parts) == 0 || candidateMax < 0 {
		return logsPlan{}, false, nil
	}
	match := "(" + strings.Join(parts, ") AND (") + ")"
	rows, err := s.rdb.QueryContext(ctx, `SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? LIMIT ?`,
		match, candidateMax+1)
	if err != nil {
		return logsPlan{}, false, fmt.Errorf("search the index: %w", err)
	}
	defer rows.Close()
	b := make([]byte, 0, 256)
	b = append(b, '[')
	n := 0
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return logsPlan{}, false, fmt.Errorf("search the index: %w", err)
		}
		if n++; n > candidateMax {
			return logsPlan{}, false, closeRows(rows, "search the index")
		}
		if n > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	if err := rows.Err(); err != nil {
		return logsPlan{}, false, fmt.Errorf("search the index: %w", err)
	}
	p = logsPlan{kind: planFilteredWalk, ids: string(append(b, ']'))}
	if n <= sortMax {
		p.kind = planSort
	}
	return p, true, nil
}

// walkHits counts the matches of srch among the first rows logs of the walk
// within w, stopping at enough.
func (s *Store) walkHits(ctx context.Context, srch *search, w where, rows, enough int) (int, error) {
	if rows <= 0 {
		return 0, nil
	}
	call, margs := srch.matchArgs("logs.message")
	query := `SELECT count(*) FROM (SELECT 1 FROM (SELECT message FROM logs` + w.sql() +
		` ORDER BY ts DESC, seq DESC LIMIT ?) AS logs WHERE ` + call + ` LIMIT ?)`
	args := append(slices.Clone(w.args), rows)
	args = append(append(args, margs...), enough)
	var n int
	if err := s.rdb.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sample the logs: %w", err)
	}
	return n, nil
}

// sql is the query of a page of limit rows (and one more, which tells that
// there is a next page) of srch by p within w, and its arguments.
func (p logsPlan) sql(srch *search, w where, limit int) (string, []any) {
	w = where{conds: slices.Clone(w.conds), args: slices.Clone(w.args)}
	from := "logs"
	switch p.kind {
	case planSort:
		// The candidates drive the join, then the matches are sorted.
		from = indexPlanFrom
		w.args = append([]any{p.ids}, w.args...)
	case planFilteredWalk:
		// The + keeps SQLite from looking the candidates up by seq (the
		// sort plan): the walk checks them on the index it walks, before
		// devtrack_match reads the row.
		w.add("+logs.seq IN (SELECT value FROM json_each(?))", p.ids)
	}
	call, margs := srch.matchArgs("logs.message")
	w.add(call, margs...)
	return logsSelect + from + w.sql() + pageOrder, append(w.args, limit+1)
}
